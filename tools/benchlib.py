"""Shared by the benchmarks: the closed-loop load generator and `homelab-ai serve` runs."""

from __future__ import annotations

import asyncio
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from frontend.models.stubs import process_tree
from frontend.triton.embedded import free_port


@dataclass
class LoadResult:
    """What a closed-loop run did: calls completed, items they carried, seconds, latencies."""

    calls: int = 0
    items: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Items (sentences, images, pages) per second."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[len(ordered) // 2] if ordered else float("nan")


async def closed_loop(
    clients: int,
    seconds: float | None,
    call: Callable[[int], Awaitable[int]],
    calls: int | None = None,
) -> LoadResult:
    """`clients` concurrent loops, each awaiting `call(i)` (i = 0, 1, ... across all clients,
    so clients spread over the inputs) until `seconds` pass or `calls` calls have started;
    `call` returns the items it
    carried and raises on a failed request. Closed loop: a client sends its next request only
    when the last one has answered, so the rate is what the server sustains at that
    concurrency, not an arrival rate it may fall behind."""
    result = LoadResult()
    counter = iter(range(calls if calls is not None else 1 << 62))
    start = time.perf_counter()
    deadline = start + seconds if seconds is not None else float("inf")

    async def client() -> None:
        for index in counter:
            if time.perf_counter() >= deadline:
                break
            began = time.perf_counter()
            # not `result.items += await ...`: that reads items before the await and loses
            # every other client's updates made meanwhile
            items = await call(index)
            result.items += items
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.calls += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


def grpc_url_from_log(log: Path) -> str:
    """The embedded Triton's gRPC address, as its log announces it."""
    text = log.read_text(errors="replace")
    marker = "Started GRPCInferenceService at "
    return text[text.rindex(marker) + len(marker) :].split('"')[0].strip()


async def wait_ready(
    url: str,
    timeout: float,
    path: str = "/ready",
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Until GET url+path answers 200; RuntimeError after `timeout` s, or at once when
    `process` (the server) exits, with the end of its `log`."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if process is not None and process.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log else []
                raise RuntimeError(f"{url} exited: " + " | ".join(tail))
            try:
                async with session.get(f"{url}{path}") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer {path} within {timeout:.0f} s; its log: {log}")


@contextmanager
def running_service(
    work: Path,
    data_dir: Path,
    models: dict[str, Any],
    extra: dict[str, Any] | None = None,
    stub_code: Path | None = None,
    frontend_code: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the service on a free port with these `models` (and `extra` config sections);
    yield (base URL, process).

    `stub_code`: a checkout whose `frontend` package Triton's model stubs import instead of
    the installed one (before/after comparisons of task code in one run). The stubs run
    Python isolated (PYTHONPATH ignored) with their working directory, <data-dir>/triton,
    first on sys.path, so a `frontend` link there wins over an editable install.

    `frontend_code`: a checkout whose `frontend` package the service process itself runs
    (its working directory: `python -m` puts that first on sys.path), for before/after
    comparisons of the frontend's own code."""
    work, data_dir = work.resolve(), data_dir.resolve()  # the service may run elsewhere
    if stub_code is not None:
        link = data_dir / "triton" / "frontend"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(stub_code.resolve() / "frontend", target_is_directory=True)
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    # The result cache off unless `extra` turns it on: the benchmarks repeat their inputs and
    # measure the models (tools/bench_cache.py measures the cache).
    settings = {"log_level": "warning", "models": models, "cache": {"enabled": False}}
    config.write_text(yaml.safe_dump({**settings, **(extra or {})}))
    port = free_port()
    command = [sys.executable, "-m", "frontend.cli", "serve", "--config", str(config)]
    command += ["--data-dir", str(data_dir), "--port", str(port)]
    with open(work / "serve.log", "wb") as log:
        service = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=frontend_code)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_ready(url, 120, process=service, log=work / "serve.log"))
            yield url, service
        finally:
            service.send_signal(signal.SIGINT)
            service.wait(60)


def _role(name: str) -> str:
    return "model stubs" if "python_b" in name else "tritonserver" if "triton" in name else ""


def cpu_seconds(service_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the service's processes by role (frontend,
    tritonserver, model stubs) and of this process, the load generator."""
    import psutil

    parts = {"frontend": 0.0, "tritonserver": 0.0, "model stubs": 0.0}
    for pid, name in process_tree(service_pid).items():
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        parts[_role(name) or "frontend"] += times.user + times.system
    own = resource.getrusage(resource.RUSAGE_SELF)
    parts["load generator"] = own.ru_utime + own.ru_stime
    return parts


def cpu_per_call(before: dict[str, float], after: dict[str, float], calls: int) -> str:
    """'role X.XX ms, ...': CPU milliseconds per call spent by each role between two samples."""
    spent = {role: (after[role] - before.get(role, 0.0)) * 1000 / max(calls, 1) for role in after}
    total = sum(spent.values())
    return ", ".join(f"{role} {ms:.2f}" for role, ms in spent.items()) + f" (total {total:.2f})"
