"""The result cache around per-image Triton calls (caption, OCR, OCR of document pages)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import Request

from frontend.cache.service import ResultCache
from frontend.core.config import ModelEntry, Task


async def cached_outputs(
    request: Request,
    task: Task,
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
    found = await cache.fetch(task, entry, parameters, inputs, compute)
    return [value.decode("utf-8") for value in found]


def image_key_parts(image: np.ndarray) -> list[bytes | memoryview]:
    pixels = np.ascontiguousarray(image, dtype=np.uint8)
    return [repr(pixels.shape).encode("ascii"), pixels.data.cast("B")]
