"""Multipart POST /api/embed: `images` file parts and `texts`/`model`/`keep_alive`/`dimensions`
form fields, read into the JSON body's shape, so one schema validates both and one handler
answers both (as /api/caption reads multipart or JSON)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import pybase64
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from frontend.core.config import LimitsSection
from frontend.core.errors import InvalidRequest
from frontend.core.jsonbody import StrictJSONRequest, StrictJSONRoute

SINGLE_FIELDS = ("model", "keep_alive", "dimensions")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # texts need no files
FORM_FIELDS: dict[str, dict[str, Any]] = {
    "images": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "image files (an image_embedding model: CLIP, SigLIP)",
    },
    "texts": {
        "type": "array",
        "items": {"type": "string"},
        "description": "texts, one field each (their vectors come before the images')",
    },
    "model": {"type": "string", "description": "Config id or HF id"},
    "keep_alive": {"type": "string", "description": "seconds or a duration such as '5m'"},
    "dimensions": {"type": "integer", "description": "Matryoshka-trained models only"},
}


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid request: {field}: {message}", {"errors": [{"field": field, "message": message}]}
    )


async def form_body(request: Request, limits: LimitsSection) -> dict[str, Any]:
    """The multipart form as the JSON body would carry it (files as base64); 400 for parts
    that are not where they belong."""
    try:  # one file over the limit still parses, so the count check can name it
        form = await request.form(
            max_files=limits.max_images_per_request + 1,
            max_fields=limits.max_texts_per_request + len(SINGLE_FIELDS),
        )
    except MultiPartException as exc:
        raise InvalidRequest(f"invalid multipart body: {exc.message[:200]}") from None
    try:
        body: dict[str, Any] = {}
        files: list[str] = []
        texts: list[str] = []
        for key, value in form.multi_items():
            if key == "images":
                if not isinstance(value, UploadFile):
                    raise _invalid("images", "must be file parts")
                data = await value.read()
                if not data:
                    raise _invalid(f"images.{len(files)}", "the file is empty")
                files.append(pybase64.b64encode(data).decode("ascii"))
            elif key == "texts":
                if isinstance(value, UploadFile):
                    raise _invalid("texts", "must be text fields, not files")
                texts.append(value)
            elif key in SINGLE_FIELDS:
                if isinstance(value, UploadFile) or key in body:
                    raise _invalid(key, "must be a single text value")
                body[key] = value
            else:
                raise _invalid(
                    key[:50], "not a form field of /api/embed (images, texts, model, ...)"
                )
    finally:
        await form.close()
    if files:
        body["images"] = files
    if texts:
        body["texts"] = texts
    return body


class EmbedFormRoute(StrictJSONRoute):
    """A JSON route (bodies parsed strictly) that also reads a form body (multipart, or
    url-encoded for texts alone) into the JSON body's fields before the schema sees it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = APIRoute.get_route_handler(self)  # StrictJSONRoute's wrapping is done here

        async def form_or_json(request: Request) -> Response:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in FORM_TYPES:
                return await handler(StrictJSONRequest(request.scope, request.receive))
            body = await form_body(request, request.app.state.settings.limits)
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}
            as_json = StrictJSONRequest(scope, request.receive)
            as_json._body = orjson.dumps(body)
            return await handler(as_json)

        return form_or_json
