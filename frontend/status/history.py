"""The Status tab's last hour: a ring buffer of 10 s samples (request and error rates, latency
percentiles per route family, memory per loaded model, GPU memory), kept in memory."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 10.0
CAPACITY = 360  # one hour of 10 s samples
# Latencies kept per family and interval; past that a uniform sample (Algorithm R), so a burst
# of traffic costs at most this many floats per family.
RESERVOIR = 1024

# The capability a route template belongs to: every dialect of a task shares one chart line.
_EXACT = {
    **dict.fromkeys(
        (
            "/api/embed",
            "/api/embeddings",
            "/v1/embeddings",
            "/embeddings",
            "/v1/embed",
            "/v2/embed",
            "/embed",
            "/vectors",
            "/predict",
        ),
        "embed",
    ),
    **dict.fromkeys(("/api/rerank", "/v1/rerank", "/v2/rerank", "/rerank"), "rerank"),
    **dict.fromkeys(
        ("/api/caption", "/api/generate", "/api/chat", "/v1/chat/completions"), "vision"
    ),
    **dict.fromkeys(("/api/ocr", "/tika", "/tika/text", "/process"), "ocr"),
}
_PREFIXES = (
    ("/rmeta", "ocr"),
    ("/api/crawl", "crawl"),
    ("/v1/scrape", "crawl"),
    ("/v1/map", "crawl"),
    ("/v1/crawl", "crawl"),
    ("/v1/batch/scrape", "crawl"),
    ("/v2/scrape", "crawl"),
    ("/v2/map", "crawl"),
    ("/v2/crawl", "crawl"),
    ("/v2/batch/scrape", "crawl"),
    ("/api/jobs", "jobs"),
    ("/api/models", "models"),
    ("/api/downloads", "models"),
    ("/api/tags", "models"),
    ("/api/ps", "models"),
    ("/api/show", "models"),
    ("/api/pull", "models"),
    ("/v1/models", "models"),
    ("/models", "models"),
)
Gauges = Callable[[], tuple[dict[str, int], int | None]]


def route_family(template: str) -> str:
    """embed, rerank, vision, ocr, crawl, jobs, models, or other (status, health, admin...)."""
    family = _EXACT.get(template)
    if family is not None:
        return family
    for prefix, name in _PREFIXES:
        if template == prefix or template.startswith(prefix + "/"):
            return name
    return "other"


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Point:
    """One closed interval."""

    t: float  # its end, seconds since the epoch
    requests_per_second: float
    server_errors_per_second: float
    client_errors_per_second: float
    latency_ms: dict[str, tuple[float, float]]  # family -> (p50, p95)
    model_memory_bytes: dict[str, int]
    gpu_memory_used_bytes: int | None


@dataclass
class _Interval:
    started: float
    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)


class StatusHistory:
    """`record` runs per request (in the event loop), `sample` closes an interval: both cheap."""

    def __init__(
        self,
        interval: float = INTERVAL_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.time,
        reservoir: int = RESERVOIR,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.capacity = capacity
        self.clock = clock
        self.reservoir = reservoir
        self.rng = rng or random.Random()
        self.points: deque[Point] = deque(maxlen=capacity)
        self._current = _Interval(clock())

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        now = self._current
        now.requests += 1
        now.server_errors += status >= 500
        now.client_errors += 400 <= status < 500
        family = route_family(endpoint)
        seen = now.seen.get(family, 0) + 1
        now.seen[family] = seen
        kept = now.latencies.setdefault(family, [])
        if len(kept) < self.reservoir:
            kept.append(seconds)
        else:
            slot = self.rng.randrange(seen)
            if slot < self.reservoir:
                kept[slot] = seconds

    def sample(self, model_memory: dict[str, int], gpu_memory_used: int | None) -> Point:
        """Close the running interval into a point (rates over its real length) and start the
        next one; the oldest point drops out once `capacity` are kept."""
        ended = self.clock()
        closed, self._current = self._current, _Interval(ended)
        span = max(ended - closed.started, 1e-3)
        latency = {}
        for family, kept in sorted(closed.latencies.items()):
            ordered = sorted(kept)
            latency[family] = (
                round(percentile(ordered, 0.5) * 1000, 2),
                round(percentile(ordered, 0.95) * 1000, 2),
            )
        point = Point(
            t=round(ended, 3),
            requests_per_second=round(closed.requests / span, 3),
            server_errors_per_second=round(closed.server_errors / span, 3),
            client_errors_per_second=round(closed.client_errors / span, 3),
            latency_ms=latency,
            model_memory_bytes=dict(model_memory),
            gpu_memory_used_bytes=gpu_memory_used,
        )
        self.points.append(point)
        return point

    def to_json(self) -> dict[str, Any]:
        """Columns, oldest first, as chart libraries take them; null where a family had no
        request or a model was not loaded at that point."""
        points = list(self.points)
        families = sorted({f for p in points for f in p.latency_ms})
        models = sorted({m for p in points for m in p.model_memory_bytes})
        gpu = [p.gpu_memory_used_bytes for p in points]
        return {
            "interval_seconds": self.interval,
            "capacity": self.capacity,
            "t": [p.t for p in points],
            "requests_per_second": [p.requests_per_second for p in points],
            "server_errors_per_second": [p.server_errors_per_second for p in points],
            "client_errors_per_second": [p.client_errors_per_second for p in points],
            "latency_ms": {
                family: {
                    "p50": [_at(p.latency_ms.get(family), 0) for p in points],
                    "p95": [_at(p.latency_ms.get(family), 1) for p in points],
                }
                for family in families
            },
            "model_memory_bytes": {
                model: [p.model_memory_bytes.get(model) for p in points] for model in models
            },
            "gpu_memory_used_bytes": gpu if any(g is not None for g in gpu) else None,
        }

    async def run(self, gauges: Gauges) -> None:
        """Sample every `interval` seconds until cancelled (the app's lifespan owns the task).
        `gauges` reads /proc and NVML, so it runs in a thread."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(due - loop.time(), 0.0))
            # after a stall, start again from now instead of sampling in a burst to catch up
            due = max(due + self.interval, loop.time() + self.interval / 2)
            try:
                memory, gpu_used = await asyncio.to_thread(gauges)
            except Exception:  # a process that vanished mid-read: keep the rates anyway
                logger.exception("status history: reading memory failed")
                memory, gpu_used = {}, None
            self.sample(memory, gpu_used)


def _at(pair: tuple[float, float] | None, index: int) -> float | None:
    return None if pair is None else pair[index]
