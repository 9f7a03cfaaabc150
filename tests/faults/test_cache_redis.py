"""The result cache in Redis: two frontends on one real redis-server share their entries, and
Redis going away costs the cache, never a request (served uncached, counted, back when Redis is).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from frontend.cache.store import RETRY_SECONDS
from frontend.core.config import CacheSection, Settings
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.faults.test_redis_outage import RedisServer
from tests.integration.fixtures import RunningApi


@pytest.fixture
def two_frontends(
    settings: Settings, triton: EmbeddedTriton, redis_server: RedisServer
) -> Iterator[tuple[RunningApi, RunningApi]]:
    cache = CacheSection(storage_uri=redis_server.url, redis_timeout_seconds=0.5)
    with (
        own_frontend(settings, triton, cache=cache) as first,
        own_frontend(settings, triton, cache=cache) as second,
    ):
        yield first, second


def post(api: RunningApi, texts: list[str]) -> httpx.Response:
    with api.client() as http:
        return http.post("/api/embed", json={"texts": texts})


def test_two_frontends_on_one_redis_share_the_cache(
    two_frontends: tuple[RunningApi, RunningApi],
) -> None:
    first, second = two_frontends
    texts = [f"shared through redis {uuid.uuid4().hex}", "a second text"]
    computed = post(first, texts)
    assert computed.status_code == 200 and computed.headers["X-Cache"] == "miss"
    shared = post(second, texts)
    assert shared.status_code == 200 and shared.headers["X-Cache"] == "hit"
    assert shared.json()["embeddings"] == computed.json()["embeddings"]
    with second.client() as http:
        stats = http.get("/api/status").json()["cache"]
    assert stats["backend"] == "redis" and stats["available"] is True
    assert stats["hits"] == 2 and stats["entries"] >= 2 and stats["bytes"] > 0


def test_requests_succeed_uncached_while_redis_is_down_and_cache_again_after(
    two_frontends: tuple[RunningApi, RunningApi], redis_server: RedisServer
) -> None:
    api, _ = two_frontends
    texts = [f"redis goes away {uuid.uuid4().hex}"]
    assert post(api, texts).headers["X-Cache"] == "miss"
    assert post(api, texts).headers["X-Cache"] == "hit"
    redis_server.stop(signal.SIGKILL)
    started = time.monotonic()
    during = [post(api, texts) for _ in range(5)]
    assert [r.status_code for r in during] == [200] * 5
    assert all(r.headers["X-Cache"] == "miss" for r in during)  # looked up, nothing there
    assert time.monotonic() - started < 10
    with api.client() as http:
        metrics = http.get("/metrics").text.splitlines()
        (errors,) = [line for line in metrics if line.startswith("cache_errors_total ")]
        # Counted, but not once per request: Redis is skipped for RETRY_SECONDS after a failure.
        assert 1 <= float(errors.split()[1]) <= 5
        assert http.get("/api/status").json()["cache"]["available"] is False
    # Back, empty (nothing persisted): filled and hit again once the retry pause is over.
    redis_server.start()
    time.sleep(RETRY_SECONDS + 0.1)
    assert post(api, texts).headers["X-Cache"] == "miss"
    assert post(api, texts).headers["X-Cache"] == "hit"


def test_a_redis_restart_between_requests_costs_the_cache_nothing(
    two_frontends: tuple[RunningApi, RunningApi], redis_server: RedisServer
) -> None:
    """The connection pooled before the restart is dead: the next command is retried on a
    fresh one, so the entry is stored at once and no error is counted (no retry pause)."""
    api, _ = two_frontends
    texts = [f"redis restarts {uuid.uuid4().hex}"]
    assert post(api, texts).headers["X-Cache"] == "miss"
    redis_server.stop(signal.SIGKILL)
    redis_server.start()  # empty again
    assert post(api, texts).headers["X-Cache"] == "miss"
    assert post(api, texts).headers["X-Cache"] == "hit"
    with api.client() as http:
        metrics = http.get("/metrics").text.splitlines()
        (errors,) = [line for line in metrics if line.startswith("cache_errors_total ")]
        assert float(errors.split()[1]) == 0
        assert http.get("/api/status").json()["cache"]["available"] is True
