"""Embedding: validate limits, answer cached texts from the result cache, split the others into
Triton-sized chunks and run them concurrently."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import numpy as np

from frontend.cache.service import ResultCache
from frontend.core.config import LimitsSection, ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.core.task_service import TaskService
from frontend.models.manifest import load_manifest
from frontend.models.registry import ModelRegistry
from frontend.triton.coalesce import Coalescer
from frontend.triton.codecs import bools_input, fp32_matrix, int_column, texts_input

TASK = Task.TEXT_EMBEDDING


def check_texts(texts: list[str], limits: LimitsSection) -> None:
    if not texts:  # schemas say so where they can; TEI's `inputs: []` reaches here
        raise InvalidRequest("no texts to embed: give at least one")
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


class Embedded(NamedTuple):
    entry: ModelEntry
    vectors: np.ndarray  # float32 [texts, dimensions]
    tokens: np.ndarray  # int32 [texts]: tokens the model read from each text


def shorten(
    vectors: np.ndarray, dimensions: int | None, entry: ModelEntry, renormalize: bool = True
) -> np.ndarray:
    """The first `dimensions` components, re-normalized unless told not to (pooled vectors,
    as TEI cuts them): meaningful only for models trained Matryoshka-style (the manifest's
    `matryoshka` flag); any other size is refused."""
    native = int(vectors.shape[1])
    if dimensions is None or dimensions == native:
        return vectors
    listed = load_manifest().get(entry.hf_model)
    if listed is None or not listed.matryoshka:
        raise InvalidRequest(
            f"model '{entry.id}' was not trained for shortened embeddings (Matryoshka): "
            f"dimensions must be {native} or omitted",
            {"errors": [{"field": "dimensions", "message": f"must be {native}"}]},
        )
    if not 1 <= dimensions < native:
        raise InvalidRequest(
            f"dimensions must be from 1 to {native} for model '{entry.id}'",
            {"errors": [{"field": "dimensions", "message": f"must be 1..{native}"}]},
        )
    cut = vectors[:, :dimensions]
    if not renormalize:
        return np.ascontiguousarray(cut, dtype=np.float32)
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return np.ascontiguousarray(cut / np.maximum(norms, 1e-12), dtype=np.float32)


def pack(vector: np.ndarray, tokens: int) -> bytes:
    """A cached embedding: its token count (int32) then the float32 vector, little-endian."""
    return int(tokens).to_bytes(4, "little", signed=True) + vector.astype("<f4").tobytes()


def unpack(values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.array([int.from_bytes(v[:4], "little", signed=True) for v in values], np.int32)
    vectors = np.stack([np.frombuffer(v, dtype="<f4", offset=4) for v in values])
    return vectors.astype(np.float32, copy=False), tokens


class EmbeddingService(TaskService):
    def __init__(
        self, registry: ModelRegistry, limits: LimitsSection, cache: ResultCache | None = None
    ) -> None:
        super().__init__(registry, limits, cache)
        # Concurrent requests for one model share Triton requests (frontend.triton.coalesce)
        self.coalescer: Coalescer[str] = Coalescer()

    async def embed(
        self, texts: list[str], model: str | None, keep_alive: float | None = None
    ) -> tuple[ModelEntry, np.ndarray]:
        entry, vectors, _ = await self.embed_counted(texts, model, keep_alive)
        return entry, vectors

    async def embed_counted(
        self,
        texts: list[str],
        model: str | None,
        keep_alive: float | None = None,
        dimensions: int | None = None,
        pooled: bool = False,
    ) -> Embedded:
        """Vectors (shortened to `dimensions` where the model allows) and token counts.
        `pooled`: the vectors before the model's final Normalize module (TEI's
        `normalize: false`), computed by the model in the same batches as the rest."""
        check_texts(texts, self.limits)
        entry = self.registry.catalog.lookup(model, TASK)
        cache = self.cache
        if cache is None:
            vectors, tokens = await self._embed_all(entry, texts, keep_alive, pooled)
        else:
            # Full vectors are cached; `dimensions` (and TEI's normalize on top of the model's
            # output) apply afterwards, so every route and option shares one entry per text.
            # Pooled vectors are other values: their keys carry the option.
            async def compute(indices: list[int]) -> list[bytes]:
                batch = [texts[i] for i in indices]
                done = await self._embed_all(entry, batch, keep_alive, pooled)
                return [pack(v, t) for v, t in zip(*done, strict=True)]

            inputs = [[text.encode("utf-8")] for text in texts]
            options = {"pooled": True} if pooled else None
            vectors, tokens = unpack(await cache.fetch("embed", entry, options, inputs, compute))
        return Embedded(entry, shorten(vectors, dimensions, entry, not pooled), tokens)

    async def _embed_all(
        self, entry: ModelEntry, texts: list[str], keep_alive: float | None, pooled: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        size = entry.max_batch_size
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        parts = await asyncio.gather(
            *(self._embed_chunk(entry, chunk, keep_alive, pooled) for chunk in chunks)
        )
        vectors = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        tokens = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        return vectors, tokens

    async def _embed_chunk(
        self, entry: ModelEntry, texts: list[str], keep_alive: float | None, pooled: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        gateway = self.registry.gateway

        async def send(batch: list[str]) -> tuple[np.ndarray, ...]:
            outputs = ["EMBEDDING", "TOKENS"]
            inputs = [texts_input(batch)]
            if pooled:
                inputs.append(bools_input([False] * len(batch), "NORMALIZE"))
            result = await gateway.infer(entry.id, inputs, outputs)
            vectors = fp32_matrix(result, "EMBEDDING", len(batch))
            return vectors, int_column(result, "TOKENS", len(batch))

        # As many requests in flight as the model runs at once (instances on each Triton)
        # keep it busy; the rest wait in the frontend and leave together. Large requests
        # (half a batch or more: a document indexer's) get one more in flight: the next
        # batch waits in Triton's queue and starts the moment one ends, while the frontend
        # answers the one that ended (4 x 32: +4-10% with python -m tools.bench_embed). Small
        # ones do not: split over two requests their batches halve (16 x 1: -12%).
        spare = 1 if 2 * len(texts) >= entry.max_batch_size else 0
        depth = (entry.instances + spare) * len(gateway.replicas)

        # Pooled requests are another operation: a lane of their own.
        lane = (entry.id, "pooled") if pooled else entry.id

        async def call() -> tuple[np.ndarray, ...]:
            return await self.coalescer.run(lane, texts, send, depth, entry.max_batch_size)

        vectors, tokens = await self.registry.run(entry, call, keep_alive)
        return vectors, tokens
