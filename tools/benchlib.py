"""Shared by the benchmarks: run `homelab-ai serve` with a given configuration."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from frontend.triton.embedded import free_port


def grpc_url_from_log(log: Path) -> str:
    """The embedded Triton's gRPC address, as its log announces it."""
    text = log.read_text(errors="replace")
    marker = "Started GRPCInferenceService at "
    return text[text.rindex(marker) + len(marker) :].split('"')[0].strip()


async def wait_ready(url: str, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            try:
                async with session.get(f"{url}/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("service did not become ready")


@contextmanager
def running_service(
    work: Path, data_dir: Path, models: dict[str, Any], extra: dict[str, Any] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the service on a free port with these `models` (and `extra` config sections);
    yield (base URL, process)."""
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"log_level": "warning", "models": models, **(extra or {})}))
    port = free_port()
    command = [sys.executable, "-m", "frontend.cli", "serve", "--config", str(config)]
    command += ["--data-dir", str(data_dir), "--port", str(port)]
    with open(work / "serve.log", "wb") as log:
        service = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_ready(url, 120))
            yield url, service
        finally:
            service.send_signal(signal.SIGINT)
            service.wait(60)
