"""Prometheus metrics (listed in docs/operations.md) and the access log, from one ASGI middleware.

Endpoint labels are route templates (`/api/models/{model_id:path}`), never raw paths, so a
scanner cannot blow up the label space; requests matching no route count as `unmatched`.
"""

from __future__ import annotations

import contextvars
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from frontend.core.asgi import HTTPMiddleware
from frontend.triton.cohorts import GENERATING_PATHS

access_logger = logging.getLogger("homelab_ai.access")
UNMATCHED = "unmatched"
# The model a request used, set by the registry while it runs (read for the access log).
current_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "current_request", default=None
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LOAD_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


def note_model(model_id: str) -> None:
    """Record the model serving the current request (for the access log)."""
    info = current_request.get()
    if info is not None:
        info["model"] = model_id


class _StateCollector(Collector):
    """Gauges read at scrape time: loaded models and GPU memory."""

    def __init__(self, loaded: Callable[[], list[str]], gpu_used: Callable[[], int | None]):
        self.loaded = loaded
        self.gpu_used = gpu_used

    def collect(self) -> Iterator[GaugeMetricFamily]:
        models = GaugeMetricFamily(
            "models_loaded", "Models loaded in Triton (1 per loaded model)", labels=["model"]
        )
        for model in self.loaded():
            models.add_metric([model], 1.0)
        yield models
        used = self.gpu_used()
        if used is not None:
            yield GaugeMetricFamily(
                "gpu_memory_used_bytes", "GPU memory in use on this host (NVML)", value=used
            )


class RecentTraffic:
    """Requests of the last `window` seconds in one-second buckets: the admin page's live rate
    and latency without a Prometheus server (memory stays at `window` buckets)."""

    def __init__(self, window: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.started = clock()
        # [second, requests, total seconds, server errors], oldest first
        self._buckets: deque[list[float]] = deque()

    def _trim(self, now: float) -> None:
        oldest = math.floor(now) - self.window + 1
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()

    def record(self, seconds: float, status: int) -> None:
        now = self.clock()
        second = math.floor(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0.0, 0])
            self._trim(now)  # the window only moves when a new second starts
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += seconds
        bucket[3] += status >= 500

    def summary(self) -> dict[str, float | int | None]:
        now = self.clock()
        self._trim(now)
        count = int(sum(b[1] for b in self._buckets))
        total = sum(b[2] for b in self._buckets)
        span = min(float(self.window), max(now - self.started, 1.0))
        return {
            "window_seconds": self.window,
            "requests": count,
            "requests_per_second": round(count / span, 3),
            "mean_latency_ms": round(total / count * 1000, 1) if count else None,
            "server_errors": int(sum(b[3] for b in self._buckets)),
        }


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "api_requests",
            "API requests by route template and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "api_request_duration_seconds",
            "API response time by route template",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_duration = Histogram(
            "model_load_duration_seconds",
            "Time to load a model into Triton",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=self.registry,
        )
        self.inference_duration = Histogram(
            "model_inference_duration_seconds",
            "Time of inference calls to Triton, per model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_restarts = Counter(
            "model_restarts",
            "Restarts of a model whose process died, hung or wedged its load",
            ["model"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.active = Gauge("active_requests", "API requests in flight", registry=self.registry)
        self.recent = RecentTraffic()
        # (endpoint, status, seconds) of every counted request: e.g. the Status tab's history
        self.listeners: list[Callable[[str, int, float], None]] = []

    def observe(self, endpoint: str, status: int, elapsed: float) -> None:
        """Count and time one request (label children cached: this runs on every request)."""
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, str(status)),
                self.duration.labels(endpoint),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)

    def watch(self, loaded: Callable[[], list[str]], gpu_used: Callable[[], int | None]) -> None:
        self.registry.register(_StateCollector(loaded, gpu_used))


def route_patterns(routes: Iterable[BaseRoute]) -> list[tuple[str, re.Pattern[str]]]:
    """(template, regex) of every route, for labelling requests refused before routing."""
    patterns = []
    for route in routes:
        path = getattr(route, "path", None)
        regex = getattr(route, "path_regex", None)
        if isinstance(path, str) and isinstance(regex, re.Pattern):
            patterns.append((path, regex))
    return patterns


def route_template(scope: Scope) -> str:
    """The matched route's path template; found by matching when no route ran (e.g. 401)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for template, regex in getattr(getattr(app, "state", None), "route_patterns", []):
        if regex.match(scope["path"]):
            return str(template)
    return UNMATCHED


class ObservabilityMiddleware(HTTPMiddleware):
    """Counts, times and logs every HTTP request (after the request id is assigned)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics: Metrics = scope["app"].state.metrics
        started = time.perf_counter()
        status = 500
        info: dict[str, Any] = {}
        token = current_request.set(info)
        counted = scope["path"] != "/metrics"
        if counted:
            metrics.active.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            generating = scope["path"] in GENERATING_PATHS
            registry = getattr(scope["app"].state, "registry", None) if generating else None
            if registry is not None:
                # on its way to a generating model: a burst leaves for Triton as one batch
                with registry.cohorts.arriving_request():
                    await self.app(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            current_request.reset(token)
            elapsed = time.perf_counter() - started
            if counted:
                metrics.active.dec()
            endpoint = route_template(scope)
            metrics.observe(endpoint, status, elapsed)
            if counted:
                metrics.recent.record(elapsed, status)
                for listener in metrics.listeners:
                    listener(endpoint, status, elapsed)
            state = scope.get("state", {})
            access_logger.info(
                "%s | %s | %s | %s %s | %d | %.1f | %s",
                datetime.now(UTC).isoformat(timespec="milliseconds"),
                state.get("request_id", "-"),
                state.get("client_ip") or (scope.get("client") or ("-",))[0],
                scope["method"],
                endpoint,
                status,
                elapsed * 1000,
                info.get("model", "-"),
            )
