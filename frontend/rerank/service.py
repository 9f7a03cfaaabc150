"""Reranking: validate, answer cached (query, document) pairs from the result cache, split the
others into Triton-sized chunks and run them concurrently."""

from __future__ import annotations

import asyncio
import struct
from typing import NamedTuple

import numpy as np

from frontend.core.config import LimitsSection, ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.core.task_service import TaskService
from frontend.triton.codecs import column, texts_input

TASK = Task.RERANK
OUTPUTS = ["LOGIT", "SCORE", "TOKENS", "TRUNCATED"]
# A cached pair: logit and score (float32), tokens (int32), truncated (bool), little-endian.
PAIR = struct.Struct("<ffi?")


class Ranked(NamedTuple):
    """Scores per document, in input order."""

    entry: ModelEntry
    logits: np.ndarray  # float32: the classifier's raw output (raw_scores)
    scores: np.ndarray  # float32: the model's activation of it (sigmoid for most)
    tokens: np.ndarray  # tokens the model read per pair

    def order(self, raw: bool = False, top_n: int | None = None) -> list[int]:
        """Document indices, best first (ties keep input order), at most top_n."""
        values = self.logits if raw else self.scores
        ranked = sorted(range(len(values)), key=lambda i: -float(values[i]))
        return ranked[:top_n] if top_n is not None else ranked

    def best(self, raw: bool = False, top_n: int | None = None) -> list[tuple[int, float]]:
        """(index, score) pairs, best first: the logits when `raw`, else the scores."""
        values = self.logits if raw else self.scores
        return [(index, float(values[index])) for index in self.order(raw, top_n)]


def check_documents(query: str, documents: list[str], limits: LimitsSection) -> None:
    if not query.strip():
        raise InvalidRequest("query is empty", _field("query", "must not be empty"))
    if not documents:
        raise InvalidRequest("documents is empty", _field("documents", "at least one"))
    if len(documents) > limits.max_rerank_documents:
        raise InvalidRequest(
            f"too many documents: {len(documents)} > {limits.max_rerank_documents} per request",
            _field("documents", f"at most {limits.max_rerank_documents}"),
        )
    for name, text in [
        ("query", query),
        *((f"documents[{i}]", d) for i, d in enumerate(documents)),
    ]:
        if len(text) > limits.max_text_chars:
            raise InvalidRequest(
                f"{name} has {len(text)} characters; the limit is {limits.max_text_chars}",
                _field(name, f"at most {limits.max_text_chars} characters"),
            )


def _field(name: str, message: str) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"field": name, "message": message}]}


class RerankService(TaskService):
    async def rerank(
        self,
        query: str,
        documents: list[str],
        model: str | None,
        truncate: bool = True,
        keep_alive: float | None = None,
    ) -> Ranked:
        """Score every document against the query. With truncate false, a pair longer than the
        model's limit is refused (400) instead of cut (longest side first, as transformers)."""
        check_documents(query, documents, self.limits)
        entry = self.registry.catalog.lookup(model, TASK)
        if self.cache is None:
            logits, scores, tokens, truncated = await self._score(
                entry, query, documents, keep_alive
            )
        else:
            # Cached per (query, document) pair; `truncate` is checked on the cached flag.
            async def compute(indices: list[int]) -> list[bytes]:
                chosen = [documents[i] for i in indices]
                done = await self._score(entry, query, chosen, keep_alive)
                return [PAIR.pack(*row) for row in zip(*(c.tolist() for c in done), strict=True)]

            encoded = query.encode("utf-8")
            pairs = [[encoded, document.encode("utf-8")] for document in documents]
            found = await self.cache.fetch("rerank", entry, None, pairs, compute)
            rows = [PAIR.unpack(value) for value in found]
            logits, scores = (np.array([r[i] for r in rows], np.float32) for i in (0, 1))
            tokens = np.array([r[2] for r in rows], np.int32)
            truncated = np.array([r[3] for r in rows], bool)
        if not truncate and truncated.any():
            first = int(np.argmax(truncated))
            raise InvalidRequest(
                f"documents[{first}] with the query is longer than model '{entry.id}' reads "
                "(its token limit); shorten it or send truncate: true",
                _field(f"documents.{first}", "too long for the model with truncate: false"),
            )
        return Ranked(entry, logits, scores, tokens)

    async def _score(
        self, entry: ModelEntry, query: str, documents: list[str], keep_alive: float | None
    ) -> tuple[np.ndarray, ...]:
        """(logits, scores, tokens, truncated), one row per document."""
        size = entry.max_batch_size
        chunks = [documents[i : i + size] for i in range(0, len(documents), size)]
        parts = await asyncio.gather(
            *(self._chunk(entry, query, chunk, keep_alive) for chunk in chunks)
        )
        return tuple(np.concatenate(c) for c in zip(*parts, strict=True))

    async def _chunk(
        self, entry: ModelEntry, query: str, documents: list[str], keep_alive: float | None
    ) -> tuple[np.ndarray, ...]:
        inputs = [
            texts_input([query] * len(documents), "QUERY"),
            texts_input(documents, "DOCUMENT"),
        ]
        result = await self.registry.infer(entry, inputs, OUTPUTS, keep_alive=keep_alive)
        rows = len(documents)
        return tuple(column(result, name, rows) for name in OUTPUTS)
