"""Graceful shutdown: on SIGTERM, refuse new work and let the requests already running finish.

Kubernetes and Compose send SIGTERM and keep routing traffic for a moment; readiness must fail
at once and running requests must not be cut. Uvicorn alone closes its listener at the first
signal (new clients get "connection refused", not a clean 503) and cancels whatever is left
after its graceful timeout, answering a bare 500; this drain runs before that, and answers
what is still running at its end with 503 itself.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import Message, Receive, Scope, Send

from frontend.core.asgi import HTTPMiddleware
from frontend.core.errors import SERVICE_UNAVAILABLE, envelope

logger = logging.getLogger(__name__)
# Reads stay open while draining (status, model lists, docs, probes); anything that starts
# work is refused.
DRAIN_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SHUTTING_DOWN = "the server is shutting down; retry on another instance or shortly"


class Running:
    """One request in flight (its task): cancellable until its response starts."""

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.started = False
        self.aborted = False


class Drain:
    """Requests in flight, and whether the service is shutting down."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self.running: set[Running] = set()  # API requests (jobs stop with the job workers)

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

    def abort(self) -> int:
        """The drain is over: cancel every request whose response has not started, so that it
        is answered 503 before Triton stops (uvicorn would cancel it later with a bare 500).
        One that is already streaming its answer is left to finish or be cut."""
        aborted = [r for r in self.running if not r.started and not r.aborted]
        for request in aborted:
            request.aborted = True
            if request.task is not None:
                request.task.cancel("drain timeout")
        if aborted:
            logger.warning("drain timeout: answering %d running requests with 503", len(aborted))
        return len(aborted)

    async def wait_aborted(self, timeout: float) -> None:
        """Until the aborted requests have sent their 503 (bounded)."""
        deadline = time.monotonic() + timeout
        while any(r.aborted for r in self.running) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


class DrainMiddleware(HTTPMiddleware):
    """Counts requests in flight; while draining, refuses new work with 503 in the envelope."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        drain: Drain = scope["app"].state.drain
        # A job already claimed runs to its end (the consumer stops before the lifespan ends).
        job = "homelab.job" in scope
        if drain.draining and scope["method"] not in DRAIN_SAFE_METHODS and not job:
            await unavailable(scope, receive, send)
            return
        drain.in_flight += 1
        try:
            if job:
                await self.app(scope, receive, send)
            else:
                await self._cancellable(drain, scope, receive, send)
        finally:
            drain.in_flight -= 1

    async def _cancellable(self, drain: Drain, scope: Scope, receive: Receive, send: Send) -> None:
        # The request's own task, cancelled by a plain cancel(): an anyio cancel scope did not
        # do, since grpc.aio turns the cancellation of a call into a CancelledError of its own
        # that the scope did not recognise, and it reached uvicorn (a 500).
        task = asyncio.current_task()
        running = Running(task)

        async def tracked(message: Message) -> None:
            if running.aborted:  # the 503 answers it: what the app sends after that is dropped
                return
            if message["type"] == "http.response.start":
                running.started = True
            await send(message)

        drain.running.add(running)
        try:
            try:
                await self.app(scope, receive, tracked)
            except asyncio.CancelledError:
                if not running.aborted:
                    raise
            if running.aborted:
                if task is not None and task.cancelling():
                    task.uncancel()  # ours, handled here: the answer below must go out
                await unavailable(scope, receive, send)
        finally:
            drain.running.discard(running)


async def unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    request_id = str(scope.get("state", {}).get("request_id", ""))
    response = envelope(
        503,
        SERVICE_UNAVAILABLE,
        SHUTTING_DOWN,
        request_id,
        headers={"Retry-After": "5", "Connection": "close"},
    )
    await response(scope, receive, send)
