"""ResultCache: look inputs up, compute only the missing ones, store them, count hits.

Each input is one entry (a text, an image), so a request with some inputs cached computes only
the others (X-Cache: partial). Per request, CacheTrace (set by CacheMiddleware) carries the
client's Cache-Control and collects the hits and misses the response header reports."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from frontend.cache.keys import Buffer, item_key, key_prefix, model_tag
from frontend.cache.store import MemoryStore, RedisStore, Store
from frontend.core.config import CacheSection, ModelEntry
from frontend.core.observability import UNMATCHED, route_template

logger = logging.getLogger(__name__)
Compute = Callable[[list[int]], Awaitable[list[bytes]]]


@dataclass
class CacheTrace:
    """One request's cache policy (from Cache-Control) and outcome (for X-Cache)."""

    read: bool = True  # no-cache / no-store: never answer from the cache
    write: bool = True  # no-store: keep nothing either
    scope: MutableMapping[str, Any] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    bypassed: bool = False

    @classmethod
    def from_cache_control(cls, value: str, scope: MutableMapping[str, Any]) -> CacheTrace:
        directives = {part.strip().split("=", 1)[0].lower() for part in value.split(",")}
        no_store = "no-store" in directives
        return cls(
            read="no-cache" not in directives and not no_store, write=not no_store, scope=scope
        )

    def header(self) -> str | None:
        """X-Cache: hit (every input cached), partial, miss (none), bypass (not looked up)."""
        if self.hits + self.misses == 0:
            return "bypass" if self.bypassed else None
        if self.misses == 0:
            return "hit"
        return "miss" if self.hits == 0 else "partial"


current_trace: contextvars.ContextVar[CacheTrace | None] = contextvars.ContextVar(
    "cache_trace", default=None
)


class ResultCache:
    """The service's one cache; `revision(entry)` names the snapshot the model's outputs come
    from (None: unknown, e.g. not downloaded, and then nothing is cached for it)."""

    def __init__(
        self,
        section: CacheSection,
        registry: CollectorRegistry,
        revision: Callable[[ModelEntry], str | None],
    ) -> None:
        self.revision = revision
        self.hits_total = Counter(
            "cache_hits",
            "Inputs (texts, images) answered from the result cache",
            ["endpoint"],
            registry=registry,
        )
        self.misses_total = Counter(
            "cache_misses",
            "Inputs (texts, images) looked up in the result cache and computed",
            ["endpoint"],
            registry=registry,
        )
        self.errors_total = Counter(
            "cache_errors",
            "Failed calls to the cache's Redis (the request went on uncached)",
            registry=registry,
        )
        self.hits = 0
        self.misses = 0
        self.store: Store
        if section.storage_uri.startswith("memory://"):
            self.store = MemoryStore(section.max_bytes, section.ttl_seconds)
        else:
            self.store = RedisStore(
                section.storage_uri,
                section.ttl_seconds,
                section.redis_timeout_seconds,
                self.errors_total.inc,
            )
        # config id -> (model, revision) its results came from last: two entries of one model
        # may be loaded from different revisions for a while, and must not evict each other
        self._revisions: dict[str, tuple[str, str]] = {}

    def _note_revision(self, entry: ModelEntry, revision: str) -> None:
        previous = self._revisions.get(entry.id)
        current = (entry.hf_model, revision)
        self._revisions[entry.id] = current
        if previous is None or previous == current:
            return
        if previous not in self._revisions.values():  # no other entry still serves it
            dropped = self.store.drop_tag(model_tag(*previous))
            logger.info(
                "result cache: %s has a new revision (%s); %d entries of the old one dropped",
                entry.hf_model,
                revision[:12],
                dropped,
            )

    async def fetch(
        self,
        kind: str,
        entry: ModelEntry,
        options: Mapping[str, Any] | None,
        inputs: Sequence[Sequence[Buffer]],
        compute: Compute,
    ) -> list[bytes]:
        """Each input's result: from the cache, or from `compute(indices of the missing)`,
        which returns their results in that order (an input given twice is computed once)."""
        trace = current_trace.get()
        read = trace.read if trace is not None else True
        write = trace.write if trace is not None else True
        revision = self.revision(entry)
        if revision is None or not (read or write):
            if trace is not None and revision is not None:
                trace.bypassed = True
            return await compute(list(range(len(inputs))))
        self._note_revision(entry, revision)
        prefix = key_prefix(kind, entry, revision, options)
        keys = [item_key(prefix, parts) for parts in inputs]
        found = await self.store.get_many(keys) if read else [None] * len(keys)
        first: dict[str, int] = {}
        for index, value in enumerate(found):
            if value is None:
                first.setdefault(keys[index], index)
        todo = list(first.values())
        computed = (
            dict(zip((keys[i] for i in todo), await compute(todo), strict=True)) if todo else {}
        )
        if write and computed:
            await self.store.put_many(model_tag(entry.hf_model, revision), computed)
        if read:
            self._count(
                trace,
                hits=len(keys) - sum(v is None for v in found),
                misses=sum(v is None for v in found),
            )
        elif trace is not None:
            trace.bypassed = True
        return [value if value is not None else computed[keys[i]] for i, value in enumerate(found)]

    def _count(self, trace: CacheTrace | None, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        endpoint = route_template(trace.scope) if trace is not None and trace.scope else UNMATCHED
        if hits:
            self.hits_total.labels(endpoint).inc(hits)
        if misses:
            self.misses_total.labels(endpoint).inc(misses)
        if trace is not None:
            trace.hits += hits
            trace.misses += misses

    async def stats(self) -> dict[str, Any]:
        looked_up = self.hits + self.misses
        return {
            "enabled": True,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / looked_up, 4) if looked_up else None,
            **await self.store.stats(),
        }

    async def close(self) -> None:
        await self.store.close()
