"""POST /api/ocr."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from frontend.core.config import Task
from frontend.core.deps import RegistryDep
from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.images.inputs import read_images
from frontend.images.openapi import image_request_body
from frontend.images.service import infer_images
from frontend.models.lifecycle import parse_keep_alive
from frontend.ocr.schemas import OcrOptions, OcrResponse

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["ocr"])
TASK: Task = "ocr"
_FIELDS: dict[str, dict[str, Any]] = {
    "model": {"type": "string", "description": "config id; the default if omitted"}
}


@router.post(
    "/ocr",
    response_model=OcrResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Read the text in images",
    openapi_extra=image_request_body(_FIELDS),
)
async def ocr(request: Request, registry: RegistryDep) -> Response:
    started = time.perf_counter()
    parsed = await read_images(request, OcrOptions, request.app.state.settings.limits)
    options: OcrOptions = parsed.options
    entry = registry.resolve(TASK, options.model)
    keep_alive = parse_keep_alive(options.keep_alive)
    documents = await infer_images(registry, entry, parsed.images, "RESULT", None, keep_alive)
    pages = [orjson.loads(document) for document in documents]
    body: dict[str, Any] = {"request_id": request_id_of(request)}
    body.update(pages[0] if parsed.single else {"results": pages})
    body["model_used"] = entry.id
    body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(body)
