"""The fault suite: the session's real Triton, fake hub and settings (tests/integration/fixtures.py,
a plugin named in tests/conftest.py, so one Triton serves both suites), plus what each fault needs.

Rules every test here keeps: traffic to 127.0.0.1 only; signals only to processes the test or the
service under test started, by pid; every loop bounded by a count and a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from frontend.app import create_app
from frontend.core.config import Settings
from frontend.triton.embedded import EmbeddedTriton, free_port
from tests.integration.fixtures import RunningApi
from tests.serving import serve_app

if TYPE_CHECKING:
    from tests.faults.test_redis_outage import RedisServer


@contextmanager
def own_frontend(
    settings: Settings, triton: EmbeddedTriton, **updates: Any
) -> Iterator[RunningApi]:
    """A frontend of its own over the session's Triton (external mode), served on loopback."""
    own = settings.model_copy(
        update={
            "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            **updates,
        }
    )
    app = create_app(own)
    server, thread, url = serve_app(app)
    try:
        yield RunningApi(url, app)
    finally:
        server.should_exit = True
        thread.join(30)


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    """Poll a condition until it holds or the deadline passes (bounded by both)."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / step) + 1):
        if condition():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return condition()


class Traffic:
    """Client threads posting one request each in a loop until stopped, at most `per_thread`
    requests each and never past `seconds`; every (phase, status) is recorded."""

    def __init__(
        self,
        url: str,
        send: Callable[[httpx.Client], httpx.Response],
        threads: int = 3,
        per_thread: int = 2000,
        seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.send = send
        self.per_thread = per_thread
        self.deadline = time.monotonic() + seconds
        self.phase = "start"
        self.results: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for _ in range(self.per_thread):
                if self._stop.is_set() or time.monotonic() > self.deadline:
                    return
                phase = self.phase
                started = time.monotonic()
                status = self.send(http).status_code
                with self._lock:
                    self.results.append((phase, status, time.monotonic() - started))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def count(self, phase: str) -> int:
        with self._lock:
            return sum(1 for p, _, _ in self.results if p == phase)

    def statuses(self) -> set[int]:
        with self._lock:
            return {status for _, status, _ in self.results}


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server of the test's own on a free loopback port, killed afterwards."""
    from tests.faults.test_redis_outage import RedisServer  # that module imports this one

    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.close()
