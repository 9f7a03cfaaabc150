"""Several Triton servers behind one gateway: spread, failover and recovery, on real servers.

Two embedded tritonservers on loopback serve the same repository. Which server answered is
read from each server's own inference statistics, not from the gateway's bookkeeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from frontend.core.config import Settings
from frontend.core.errors import APIError
from frontend.models.catalog import ModelCatalog
from frontend.triton.codecs import image_input, strings
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, triton_environment
from frontend.triton.gateway import TritonGateway
from frontend.triton.pipe import MAX_PIPED_BYTES
from frontend.triton.repository import write_repository
from tests.images import render_text

pytestmark = pytest.mark.integration

MODEL = "rapidocr"  # the built-in OCR engine: loads in about a second, no weights to fetch
TEXT = "Replica 42"


def settled(count: Callable[[], int], expected: int, timeout: float = 10.0) -> int:
    """`count()` once it reaches `expected` (Triton reports statistics just after responding)."""
    deadline = time.monotonic() + timeout
    while (value := count()) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def served(server: EmbeddedTriton) -> int:
    """Successful inferences this server process has run for MODEL (0 when not loaded)."""
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        try:
            stats = client.get_inference_statistics(MODEL, as_json=True)
        except Exception:  # the model is not loaded on this (new) process
            return 0
    models = stats.get("model_stats", [])
    return int(models[0]["inference_stats"]["success"].get("count", 0)) if models else 0


def model_ready(server: EmbeddedTriton) -> bool:
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        return bool(client.is_model_ready(MODEL))


async def read_image(gateway: TritonGateway, image: np.ndarray) -> str:
    result = await gateway.infer(MODEL, [image_input(image)], ["RESULT"])
    return str(json.loads(strings(result, "RESULT")[0])["text"])


async def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def scenario(settings: Settings, work: Path, messages: Callable[[], list[str]]) -> None:
    write_repository(settings, ModelCatalog(settings).all(enabled=False))
    servers = [
        EmbeddedTriton(
            repositories=[settings.triton_repository_dir],
            work_dir=work / name,
            ports=TritonPorts.choose(),
            env=triton_environment(settings),
        )
        for name in ("triton-a", "triton-b")
    ]
    a, b = servers
    await asyncio.gather(a.start(60), b.start(60))
    gateway = TritonGateway([a.grpc_url, b.grpc_url], probe_interval=0.2)
    # Two sizes: under pipe.MAX_PIPED_BYTES requests go over each server's open stream, over
    # it as unary calls; the calls take turns, so both ways go through the failover.
    small = np.asarray(render_text([TEXT], size=(300, 64), font_size=34))
    large = np.asarray(render_text([TEXT], size=(320, 70), font_size=36))
    assert small.nbytes < MAX_PIPED_BYTES < large.nbytes
    sizes = itertools.cycle([small, small, large])  # not 2: replicas take turns

    async def read_text(gateway: TritonGateway) -> str:
        return await read_image(gateway, next(sizes))

    try:
        # Load fans out: both servers hold the model.
        await gateway.load(MODEL)
        assert model_ready(a) and model_ready(b)

        # Spread: sequential and concurrent requests are shared by both servers.
        texts = [await read_text(gateway) for _ in range(10)]
        texts += await asyncio.gather(*(read_text(gateway) for _ in range(10)))
        assert all(text == TEXT for text in texts), texts
        assert settled(lambda: served(a) + served(b), 20) == 20
        served_a, served_b = served(a), served(b)
        assert served_a >= 5 and served_b >= 5, (served_a, served_b)
        assert all(replica.pipe.piped > 0 for replica in gateway.replicas)

        # Failover: B dies (SIGKILL, stubs included); every request still succeeds, on A.
        assert b.process is not None
        os.killpg(b.process.pid, signal.SIGKILL)
        texts = [await read_text(gateway) for _ in range(6)]
        texts += await asyncio.gather(*(read_text(gateway) for _ in range(6)))
        assert all(text == TEXT for text in texts), texts
        # B's supervisor may already have restarted it (fresh statistics) and the gateway
        # taken it back: every request was served once, by A or by the new B.
        assert settled(lambda: served(a) - served_a + served(b), 12) == 12
        assert await gateway.is_ready()

        # Recovery: B's supervisor restarts it with nothing loaded; the gateway probes it,
        # loads the model on it again and sends it requests once more.
        await wait_for(lambda: gateway.replicas[1].up, 60, "the restarted server to rejoin")
        assert b.restarts == 1
        assert any(f"Triton {b.grpc_url} is unreachable" in m for m in messages())
        assert model_ready(b)
        texts = [await read_text(gateway) for _ in range(6)]
        assert all(text == TEXT for text in texts), texts
        assert settled(lambda: served(b), 2) >= 2

        # Unload fans out too.
        await gateway.unload(MODEL)
        await wait_for(lambda: not model_ready(a) and not model_ready(b), 30, "the model to unload")

        # With every server gone, requests fail with 503 (not a hang, not a 500).
        await gateway.load(MODEL)
        await asyncio.gather(a.stop(), b.stop())
        with pytest.raises(APIError) as failure:
            await read_text(gateway)
        assert failure.value.status == 503
        assert not await gateway.is_ready()
    finally:
        await gateway.close()
        await asyncio.gather(a.stop(), b.stop())


def test_requests_spread_fail_over_and_come_back(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="frontend.triton")
    started = time.monotonic()
    asyncio.run(scenario(settings, tmp_path, lambda: [r.getMessage() for r in caplog.records]))
    assert time.monotonic() - started < 90
