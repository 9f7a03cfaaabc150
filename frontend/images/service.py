"""Run decoded images through an image model: one Triton request per image, batched by Triton."""

from __future__ import annotations

import asyncio

import numpy as np

from frontend.core.config import ModelEntry
from frontend.models.registry import ModelRegistry
from frontend.triton.codecs import image_input, strings


async def infer_images(
    registry: ModelRegistry,
    entry: ModelEntry,
    images: list[np.ndarray],
    output: str,
    parameters: dict[str, int | str] | None = None,
    keep_alive: float | None = None,
) -> list[str]:
    """The model's string output for each image, in input order."""

    async def one(image: np.ndarray) -> str:
        async def call() -> str:
            result = await registry.gateway.infer(
                entry.id, [image_input(image)], [output], parameters
            )
            return strings(result, output)[0]

        return await registry.run(entry, call, keep_alive)

    return list(await asyncio.gather(*(one(image) for image in images)))
