"""Security pieces without a server: keys, client addresses, bind refusal, shared rate limits
(in a real Redis), and the inference concurrency guard."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontend.cli import insecure_bind, main
from frontend.core.config import ConfigError, SecuritySection, load_settings
from frontend.core.errors import APIError
from frontend.core.security import Caller, RateLimiter, SecurityPolicy, hash_key
from frontend.models.registry import ModelRegistry


def policy(**data: object) -> SecurityPolicy:
    return SecurityPolicy(SecuritySection(**data))  # type: ignore[arg-type]


def test_keys_are_matched_by_hash_and_revoked_keys_refused() -> None:
    keys = [
        {"key_hash": hash_key("alpha-key"), "name": "alpha"},
        {"key_hash": hash_key("beta-key"), "name": "beta", "rate_limit": "1/second"},
        {"key_hash": hash_key("gone-key"), "name": "gone", "revoked": True},
    ]
    checker = policy(api_keys=keys)
    assert checker.key_for("alpha-key") == ("alpha", None)
    assert checker.key_for("beta-key") == ("beta", "1/second")
    assert checker.key_for("gone-key") is None
    assert checker.key_for("alpha-key ") is None
    assert SecuritySection(api_keys=keys).auth_required is True  # type: ignore[arg-type]
    assert SecuritySection().auth_required is False


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="ip_allowlist"):
        load_settings(None, security={"ip_allowlist": ["10.0.0.0/33"]})
    with pytest.raises(ConfigError, match="rate"):
        load_settings(None, security={"rate_limit": {"per_key": "lots"}})
    with pytest.raises(ConfigError, match="no usable key"):
        load_settings(None, security={"auth_enabled": True})


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5000), "headers": headers}


def test_forwarded_for_is_read_only_from_trusted_proxies() -> None:
    direct = policy()
    assert str(direct.client_address(scope("10.0.0.1", "1.2.3.4"))) == "10.0.0.1"
    proxied = policy(trusted_proxies=["10.0.0.0/24", "172.16.0.2"])
    # client, then a proxy we trust, then the peer (another trusted proxy)
    chain = "203.0.113.9, 198.51.100.7, 172.16.0.2"
    assert str(proxied.client_address(scope("10.0.0.1", chain))) == "198.51.100.7"
    assert str(proxied.client_address(scope("10.0.0.1", "not-an-ip"))) == "10.0.0.1"
    assert str(proxied.client_address(scope("192.0.2.1", "1.2.3.4"))) == "192.0.2.1"
    assert str(proxied.client_address(scope("::ffff:10.0.0.5", "1.2.3.4"))) == "1.2.3.4"


@pytest.mark.parametrize(
    ("host", "security", "refused"),
    [
        ("127.0.0.1", {}, False),
        ("::1", {}, False),
        ("localhost", {}, False),
        ("0.0.0.0", {}, True),
        ("192.168.1.10", {}, True),
        ("0.0.0.0", {"allow_unauthenticated_remote": True}, False),
        ("0.0.0.0", {"api_keys": [{"key_hash": "a" * 64, "name": "x"}]}, False),
        (
            "0.0.0.0",
            {"api_keys": [{"key_hash": "a" * 64, "name": "x"}], "auth_enabled": False},
            True,
        ),
    ],
)
def test_serving_beyond_loopback_needs_auth(
    host: str, security: dict[str, object], refused: bool
) -> None:
    settings = load_settings(None, server={"host": host}, security=security)
    assert (insecure_bind(settings) is not None) == refused


def test_cli_refuses_an_open_remote_bind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "refusing to serve 0.0.0.0" in capsys.readouterr().err


def test_keys_create_prints_a_key_and_its_config_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "photo app"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"^\s+(hlai_\S+)$", out, re.M)
    digest = re.search(r"key_hash: ([0-9a-f]{64})", out)
    assert key and digest
    assert hash_key(key.group(1)) == digest.group(1)
    section = SecuritySection(api_keys=[{"key_hash": digest.group(1), "name": "photo app"}])  # type: ignore[list-item]
    assert SecurityPolicy(section).key_for(key.group(1)) == ("photo app", None)
    assert main(["keys", "create", "other"]) == 0
    assert key.group(1) not in capsys.readouterr().out  # a new random key each time


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `bash tools/install.sh --dev` installs it"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def test_replicas_share_limits_through_redis(redis_url: str) -> None:
    section = SecuritySection(rate_limit={"per_key": "4/minute", "storage_uri": redis_url})  # type: ignore[arg-type]

    async def scenario() -> list[bool]:
        replica_a, replica_b = RateLimiter(section), RateLimiter(section)
        caller = Caller(None, key_name=f"app-{time.time_ns()}")
        results = []
        for limiter in (replica_a, replica_b, replica_a, replica_b, replica_a):
            allowed, _ = await limiter.check(caller)
            results.append(allowed)
        other, _ = await replica_b.check(Caller(None, key_name=f"other-{time.time_ns()}"))
        return [*results, other]

    assert asyncio.run(scenario()) == [True, True, True, True, False, True]


def test_unreachable_redis_fails_open() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    section = SecuritySection(
        rate_limit={"per_key": "1/minute", "storage_uri": f"redis://127.0.0.1:{port}/0"}  # type: ignore[arg-type]
    )
    caller = Caller(None, key_name="x")
    limiter = RateLimiter(section)
    assert asyncio.run(limiter.check(caller)) == (True, {})


def test_concurrency_guard_queues_then_refuses(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models={"ocr": [{"id": "reader", "hf_model": "rapidocr/PP-OCRv4"}]},
        resources={"max_concurrent_requests": 2, "queue_timeout_seconds": 0.3},
    )
    registry = ModelRegistry(settings, gateway=None)  # type: ignore[arg-type]
    registry._loaded.add("reader")  # as if loaded: this tests the guard, not Triton
    entry = registry.catalog.lookup("reader")
    assert entry is not None
    running = 0
    peak = 0

    async def slow_call() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1
        return "ok"

    async def scenario() -> list[object]:
        quick = [registry.run(entry, slow_call) for _ in range(4)]  # 2 run, 2 wait 0.2 s
        first = await asyncio.gather(*quick, return_exceptions=True)
        slow_call_long = [registry.run(entry, lambda: asyncio.sleep(1, "ok")) for _ in range(3)]
        second = await asyncio.gather(*slow_call_long, return_exceptions=True)
        return [*first, *second]

    results = asyncio.run(scenario())
    assert results[:4] == ["ok"] * 4 and peak == 2
    refused = [r for r in results[4:] if isinstance(r, APIError)]
    assert len(refused) == 1 and refused[0].status == 503
    assert refused[0].code == "RESOURCE_EXHAUSTED"
    assert results[4:].count("ok") == 2
