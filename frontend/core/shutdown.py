"""Graceful shutdown: on SIGTERM, refuse new work and let the requests already running finish.

Kubernetes and Compose send SIGTERM and keep routing traffic for a moment; readiness must fail
at once and running requests must not be cut. Uvicorn alone closes its listener at the first
signal (new clients get "connection refused", not a clean 503) and cancels whatever is left
after its graceful timeout; this drain runs before that.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from frontend.core.errors import SERVICE_UNAVAILABLE, envelope

logger = logging.getLogger(__name__)
# Reads stay open while draining (status, model lists, docs, probes); anything that starts
# work is refused.
DRAIN_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Drain:
    """Requests in flight, and whether the service is shutting down."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0

    def begin(self) -> None:
        if not self.draining:
            logger.info("shutting down: refusing new work, %d requests running", self.in_flight)
        self.draining = True

    async def wait(self, timeout: float) -> int:
        """Wait until no request runs, at most `timeout` seconds; how many are still running."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.in_flight:
            logger.warning("drain timeout: %d requests still running", self.in_flight)
        else:
            logger.info("drained: no request running")
        return self.in_flight


class DrainMiddleware:
    """Counts requests in flight; while draining, refuses new work with 503 in the envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain: Drain = scope["app"].state.drain
        # A job already claimed runs to its end (the consumer stops before the lifespan ends).
        job = "homelab.job" in scope
        if drain.draining and scope["method"] not in DRAIN_SAFE_METHODS and not job:
            request_id = str(scope.get("state", {}).get("request_id", ""))
            response = envelope(
                503,
                SERVICE_UNAVAILABLE,
                "the server is shutting down; retry on another instance or shortly",
                request_id,
                headers={"Retry-After": "5", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            drain.in_flight -= 1
