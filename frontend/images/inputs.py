"""Read images from multipart/form-data or JSON (base64, `image` or `batch`) plus options."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from frontend.core.config import LimitsSection
from frontend.core.errors import APIError, InvalidRequest
from frontend.core.jsonbody import decode_json
from frontend.images.decode import ImageLimits, decode_image

OptionsT = TypeVar("OptionsT", bound=BaseModel)
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
IMAGE_FIELDS = {"image", "batch"}


@dataclass
class ImageRequest:
    images: list[np.ndarray]
    single: bool  # one `image` (reply with a singular field) rather than a batch
    options: Any


def _invalid(message: str, details: dict[str, Any] | None = None) -> APIError:
    return InvalidRequest(message, details)


def _b64(value: Any, index: int) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"image {index}: must be a base64 string", {"image_index": index})
    payload = _DATA_URL.sub("", value.strip(), count=1)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"image {index}: is not valid base64", {"image_index": index}) from None


def _options(model: type[OptionsT], values: dict[str, Any], limits: LimitsSection) -> OptionsT:
    try:  # the limits let the schema check its own bounds
        return model.model_validate(values, context={"limits": limits})
    except ValidationError as exc:
        item = exc.errors()[0]
        field = ".".join(str(p) for p in item["loc"]) or "body"
        raise _invalid(f"invalid request: {field}: {item['msg']}") from None


async def _from_json(
    request: Request, options: type[OptionsT], limits: LimitsSection
) -> tuple[list[bytes], bool, Any]:
    body = decode_json(await request.body())
    if not isinstance(body, dict):
        raise _invalid("request body must be a JSON object")
    if ("image" in body) == ("batch" in body):
        raise _invalid("send exactly one of `image` (one base64 image) or `batch` (a list)")
    if "image" in body:
        encoded, single = [body["image"]], True
    else:
        if not isinstance(body["batch"], list) or not body["batch"]:
            raise _invalid("`batch` must be a non-empty list of base64 images")
        encoded, single = body["batch"], False
    rest = {k: v for k, v in body.items() if k not in IMAGE_FIELDS}
    encoded_images = [_b64(value, i) for i, value in enumerate(encoded)]
    return encoded_images, single, _options(options, rest, limits)


async def _from_form(
    request: Request, options: type[OptionsT], limits: LimitsSection
) -> tuple[list[bytes], bool, Any]:
    max_images = limits.max_images_per_request
    try:
        form = await request.form(max_files=max_images + 1, max_fields=32)
    except MultiPartException as exc:
        raise _invalid(f"invalid multipart body: {exc.message[:200]}") from None
    try:
        files = [item for item in form.getlist("image") if isinstance(item, UploadFile)]
        if not files:
            raise _invalid("multipart body has no `image` file part")
        if any(not isinstance(v, UploadFile) for v in form.getlist("image")):
            raise _invalid("`image` parts must be files")
        data = [await f.read() for f in files]
        rest: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == "image":
                continue
            if isinstance(value, UploadFile) or key in rest:
                raise _invalid(f"form field `{key[:50]}` must be a single text value")
            rest[key] = value
    finally:
        await form.close()
    return data, len(data) == 1, _options(options, rest, limits)


async def read_images(
    request: Request,
    options: type[OptionsT],
    limits: LimitsSection,
    fit_within: int | None = None,
) -> ImageRequest:
    """Parse, check and decode the request's images (shrunk to `fit_within` if given)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        data, single, parsed = await _from_form(request, options, limits)
    elif content_type in ("application/json", ""):
        data, single, parsed = await _from_json(request, options, limits)
    else:
        raise _invalid("send multipart/form-data (image files) or application/json (base64)")
    if len(data) > limits.max_images_per_request:
        raise _invalid(
            f"too many images: {len(data)} > {limits.max_images_per_request} per request"
        )
    image_limits = ImageLimits(limits.max_image_pixels, limits.max_image_side)

    def decode_all() -> list[np.ndarray]:
        return [decode_image(blob, i, image_limits, fit_within) for i, blob in enumerate(data)]

    # Pillow releases the GIL while decoding: keep the event loop free meanwhile.
    images = await anyio.to_thread.run_sync(decode_all)
    return ImageRequest(images, single, parsed)
