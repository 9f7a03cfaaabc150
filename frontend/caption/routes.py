"""POST /api/caption."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from frontend.caption.schemas import CaptionOptions, CaptionResponse
from frontend.core.config import Task
from frontend.core.deps import RegistryDep
from frontend.core.errors import INVALID_REQUEST, APIError, json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.images.inputs import read_images
from frontend.images.openapi import image_request_body
from frontend.images.service import infer_images
from frontend.models.lifecycle import parse_keep_alive

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["captioning"])
TASK: Task = "image_caption"
# Captioning models look at a few hundred pixels (BLIP: 384); shipping a 12 MP photo's raw
# RGB to them would cost 36 MB per image for nothing. OCR keeps full resolution.
CAPTION_MAX_SIDE = 1024
_FIELDS: dict[str, dict[str, Any]] = {
    "model": {"type": "string", "description": "config id or HF id; the default if omitted"},
    "max_new_tokens": {"type": "integer", "minimum": 1},
    "num_beams": {"type": "integer", "minimum": 1},
}


@router.post(
    "/caption",
    response_model=CaptionResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Describe images in words",
    openapi_extra=image_request_body(_FIELDS),
)
async def caption(request: Request, registry: RegistryDep) -> Response:
    started = time.perf_counter()
    limits = request.app.state.settings.limits
    parsed = await read_images(request, CaptionOptions, limits, fit_within=CAPTION_MAX_SIDE)
    options: CaptionOptions = parsed.options
    entry = registry.resolve(TASK, options.model)
    parameters: dict[str, int | str] = {}
    for name, value, bound in (
        ("max_new_tokens", options.max_new_tokens, limits.max_new_tokens),
        ("num_beams", options.num_beams, limits.max_num_beams),
    ):
        if value is not None:
            if value > bound:
                raise APIError(400, INVALID_REQUEST, f"{name} must be at most {bound}")
            parameters[name] = value
    keep_alive = parse_keep_alive(options.keep_alive)
    captions = await infer_images(registry, entry, parsed.images, "CAPTION", parameters, keep_alive)
    body: dict[str, Any] = {"request_id": request_id_of(request)}
    body.update({"caption": captions[0]} if parsed.single else {"captions": captions})
    body["model_used"] = entry.id
    body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(body)
