"""POST /api/caption and POST /api/ocr: one shape, parse the images, run the task, reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

from frontend.cache.service import ResultCache
from frontend.core.config import ModelEntry, Task
from frontend.core.deps import RegistryDep
from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.images.inputs import read_images
from frontend.images.openapi import image_request_body
from frontend.images.schemas import CaptionOptions, CaptionResponse, ImageOptions, OcrResponse
from frontend.models.lifecycle import parse_keep_alive
from frontend.models.registry import ModelRegistry
from frontend.triton.codecs import image_input, strings

router = APIRouter(route_class=StrictJSONRoute, prefix="/api")
# Captioning models look at a few hundred pixels (BLIP: 384); shipping a 12 MP photo's raw
# RGB to them would cost 36 MB per image for nothing. OCR keeps full resolution.
CAPTION_MAX_SIDE = 1024
_MODEL_FIELD = {"type": "string", "description": "config id or HF id; the default if omitted"}


@dataclass(frozen=True)
class ImageTask:
    """What differs between the image endpoints."""

    task: Task
    options: type[ImageOptions]
    output: str  # the Triton output: one string per image
    reply: Callable[[list[str], bool], dict[str, Any]]  # (outputs, single image) -> fields
    fit_within: int | None = None


def _captions(outputs: list[str], single: bool) -> dict[str, Any]:
    return {"caption": outputs[0]} if single else {"captions": outputs}


def _pages(outputs: list[str], single: bool) -> dict[str, Any]:
    pages = [orjson.loads(document) for document in outputs]
    return pages[0] if single else {"results": pages}


CAPTION = ImageTask(Task.IMAGE_CAPTION, CaptionOptions, "CAPTION", _captions, CAPTION_MAX_SIDE)
OCR = ImageTask(Task.OCR, ImageOptions, "RESULT", _pages)


async def cached_outputs(
    request: Request,
    spec: ImageTask,
    entry: ModelEntry,
    parameters: dict[str, Any] | None,
    images: list[np.ndarray],
    one: Callable[[np.ndarray], Awaitable[str]],
) -> list[str]:
    """`one(image)` for every image, through the result cache (keyed by the decoded pixels and
    their shape) when it is on: cached images cost no Triton request."""
    cache: ResultCache | None = request.app.state.cache
    if cache is None:
        return list(await asyncio.gather(*(one(image) for image in images)))

    async def compute(indices: list[int]) -> list[bytes]:
        done = await asyncio.gather(*(one(images[i]) for i in indices))
        return [text.encode("utf-8") for text in done]

    inputs = [image_key_parts(image) for image in images]
    found = await cache.fetch(spec.task, entry, parameters, inputs, compute)
    return [value.decode("utf-8") for value in found]


def image_key_parts(image: np.ndarray) -> list[bytes | memoryview]:
    pixels = np.ascontiguousarray(image, dtype=np.uint8)
    return [repr(pixels.shape).encode("ascii"), pixels.data.cast("B")]


async def serve_images(request: Request, registry: ModelRegistry, spec: ImageTask) -> Response:
    """Parse and decode the images, run them through the model (one Triton request each,
    batched by Triton), and answer with request_id, model_used and processing_time_ms."""
    started = time.perf_counter()
    limits = request.app.state.settings.limits
    parsed = await read_images(request, spec.options, limits, fit_within=spec.fit_within)
    options: ImageOptions = parsed.options
    entry = registry.catalog.lookup(options.model, spec.task)
    keep_alive = parse_keep_alive(options.keep_alive)
    parameters = options.parameters() or None

    async def one(image: Any) -> str:
        inputs = [image_input(image)]
        result = await registry.infer(entry, inputs, [spec.output], parameters, keep_alive)
        return strings(result, spec.output)[0]

    outputs = await cached_outputs(request, spec, entry, parameters, parsed.images, one)
    body: dict[str, Any] = {"request_id": request_id_of(request)}
    body.update(spec.reply(outputs, parsed.single))
    body["model_used"] = entry.id
    body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(body)


@router.post(
    "/caption",
    response_model=CaptionResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Describe images in words",
    tags=["captioning"],
    openapi_extra=image_request_body(
        {
            "model": _MODEL_FIELD,
            "max_new_tokens": {"type": "integer", "minimum": 1},
            "num_beams": {"type": "integer", "minimum": 1},
        }
    ),
)
async def caption(request: Request, registry: RegistryDep) -> Response:
    return await serve_images(request, registry, CAPTION)


@router.post(
    "/ocr",
    response_model=OcrResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Read the text in images",
    tags=["ocr"],
    openapi_extra=image_request_body(
        {"model": {"type": "string", "description": "config id; the default if omitted"}}
    ),
)
async def ocr(request: Request, registry: RegistryDep) -> Response:
    return await serve_images(request, registry, OCR)
