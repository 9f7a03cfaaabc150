"""Embedding: validate limits, split into Triton-sized chunks, run them concurrently."""

from __future__ import annotations

import asyncio

import numpy as np

from frontend.core.config import LimitsSection, ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.models.registry import ModelRegistry
from frontend.triton.codecs import fp32_matrix, texts_input

TASK = Task.TEXT_EMBEDDING


def check_texts(texts: list[str], limits: LimitsSection) -> None:
    if len(texts) > limits.max_texts_per_request:
        raise InvalidRequest(
            f"too many texts: {len(texts)} > {limits.max_texts_per_request} per request",
        )
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidRequest(f"texts[{index}] is empty")
        if len(text) > limits.max_text_chars:
            raise InvalidRequest(
                f"texts[{index}] has {len(text)} characters; the limit is {limits.max_text_chars}",
            )


class EmbeddingService:
    def __init__(self, registry: ModelRegistry, limits: LimitsSection) -> None:
        self.registry = registry
        self.limits = limits

    async def embed(
        self, texts: list[str], model: str | None, keep_alive: float | None = None
    ) -> tuple[ModelEntry, np.ndarray]:
        check_texts(texts, self.limits)
        entry = self.registry.catalog.lookup(model, TASK)
        size = entry.max_batch_size
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        parts = await asyncio.gather(
            *(self._embed_chunk(entry, chunk, keep_alive) for chunk in chunks)
        )
        return entry, parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def _embed_chunk(
        self, entry: ModelEntry, texts: list[str], keep_alive: float | None
    ) -> np.ndarray:
        inputs = [texts_input(texts)]
        result = await self.registry.infer(entry, inputs, ["EMBEDDING"], keep_alive=keep_alive)
        return fp32_matrix(result, "EMBEDDING", len(texts))
