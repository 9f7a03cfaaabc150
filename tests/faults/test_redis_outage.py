"""Redis, the shared rate-limit storage, going down and coming back while requests flow: the
documented policy is to keep serving while it is unreachable (fail open) and to limit again as
soon as it is back. A real redis-server on a free loopback port, signalled by its pid."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from ipaddress import ip_address

import httpx
import pytest

from frontend.core.config import SecuritySection, Settings
from frontend.core.security import Caller, RateLimiter, hash_key
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import Traffic, own_frontend, wait_until
from tests.integration.fixtures import RunningApi

FLOW_KEY = "hlai_fault-flow-key-0123456789"  # its own limit is far above the traffic
LIMITED_KEY = "hlai_fault-limited-key-0123456789"
LIMIT = 5  # LIMITED_KEY's requests per minute
EMBED = {"texts": ["the rate limiter's storage went away"], "model": "minilm"}


class RedisServer:
    """A redis-server of the test's own (no persistence), stopped and started again by pid."""

    def __init__(self, port: int) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: `bash tools/install.sh --dev` installs it"
        self.command = [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        ]
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accepts(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        assert wait_until(self._accepts, 10), "redis-server did not start listening"

    def stop(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)
        self.process.wait(10)
        assert not self._accepts()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def limited_api(
    settings: Settings, triton: EmbeddedTriton, redis_server: RedisServer
) -> Iterator[RunningApi]:
    security = SecuritySection(
        api_keys=[
            {"key_hash": hash_key(FLOW_KEY), "name": "flow", "rate_limit": "100000/minute"},  # type: ignore[list-item]
            {"key_hash": hash_key(LIMITED_KEY), "name": "limited"},  # type: ignore[list-item]
        ],
        rate_limit={"per_key": f"{LIMIT}/minute", "storage_uri": redis_server.url},  # type: ignore[arg-type]
    )
    with own_frontend(settings, triton, security=security) as api:
        yield api


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def limited_burst(client: httpx.Client, count: int) -> list[httpx.Response]:
    return [
        client.post("/api/embed", json=EMBED, headers=bearer(LIMITED_KEY)) for _ in range(count)
    ]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_rate_limits_fail_open_while_redis_is_down_and_apply_again_once_it_is_back(
    limited_api: RunningApi, redis_server: RedisServer, sig: signal.Signals
) -> None:
    def embed(http: httpx.Client) -> httpx.Response:
        return http.post("/api/embed", json=EMBED, headers=bearer(FLOW_KEY))

    with limited_api.client() as client, Traffic(limited_api.url, embed, seconds=25) as flow:
        assert client.post("/api/embed", json=EMBED, headers=bearer(FLOW_KEY)).status_code == 200
        # Up: the limit holds, counted in Redis.
        flow.phase = "up"
        before = limited_burst(client, LIMIT + 2)
        assert [r.status_code for r in before] == [200] * LIMIT + [429, 429]
        assert before[0].headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
        assert before[-1].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert wait_until(lambda: flow.count("up") >= 5, 10)

        # Down: served without limits (the exhausted key too), no 500, no rate headers.
        flow.phase = "down"
        redis_server.stop(sig)
        down_started = time.monotonic()
        during = limited_burst(client, 2 * LIMIT)
        assert [r.status_code for r in during] == [200] * (2 * LIMIT)
        assert all("X-RateLimit-Remaining" not in r.headers for r in during)
        assert wait_until(lambda: flow.count("down") >= 20, 10)
        down_seconds = time.monotonic() - down_started

        # Back on the same port (empty: nothing was persisted): limited again at once.
        redis_server.start()
        flow.phase = "back"
        after = limited_burst(client, LIMIT + 1)
        assert [r.status_code for r in after] == [200] * LIMIT + [429]
        assert after[0].headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
        assert wait_until(lambda: flow.count("back") >= 5, 10)

    assert flow.statuses() == {200}, sorted({(p, s) for p, s, _ in flow.results if s != 200})
    # Failing open costs nothing: a refused connection to Redis fails at once.
    slowest = max(seconds for phase, _, seconds in flow.results if phase == "down")
    assert slowest < 2.0, slowest
    print(
        f"redis {sig.name}: {flow.count('up')} requests up, {flow.count('down')} in "
        f"{down_seconds:.2f} s down, {flow.count('back')} back; slowest while down {slowest:.3f} s"
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_redis_restart_between_requests_does_not_let_pooled_connections_fail_open(
    redis_server: RedisServer, sig: signal.Signals
) -> None:
    """Connections pooled before a restart are dead; each one's first use after it must be
    retried on a fresh connection and counted, not served unlimited."""
    security = SecuritySection(
        rate_limit={"per_ip": "100/minute", "storage_uri": redis_server.url}  # type: ignore[arg-type]
    )
    limiter = RateLimiter(security)
    caller = Caller(ip_address("127.0.0.1"))

    async def burst(count: int) -> list[str]:
        """`count` concurrent checks, then one more: what each reported as remaining."""
        checks = await asyncio.gather(*(limiter.check(caller) for _ in range(count)))
        _, last = await limiter.check(caller)
        remaining = [headers.get("X-RateLimit-Remaining", "unlimited") for _, headers in checks]
        return [*remaining, last.get("X-RateLimit-Remaining", "unlimited")]

    async def scenario() -> tuple[list[str], list[str]]:
        before = await burst(4)  # four pooled connections
        redis_server.stop(sig)
        redis_server.start()  # empty again: nothing was persisted
        return before, await burst(4)

    before, after = asyncio.run(scenario())
    assert all(r.isdigit() for r in before) and before[-1] == "95", before
    # Every request after the restart was counted (none served unlimited), from zero again.
    assert all(r.isdigit() for r in after) and after[-1] == "95", after
