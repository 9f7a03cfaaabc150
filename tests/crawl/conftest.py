"""The crawl API served over real HTTP by the real app (no Triton needed: its address is a
closed port, so the model routes answer 503), a real Chromium, loopback sites."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from frontend.app import create_app
from frontend.core.config import load_settings
from frontend.crawl.browser import process_group
from frontend.crawl.policy import Resolver, system_resolver
from frontend.crawl.service import CrawlService
from frontend.triton.embedded import free_port
from tests.crawl.site import SITE_HOST, Listener, Site
from tests.crawl.tree import Tree
from tests.serving import serve_app

CRAWL = {
    "allowed_hosts": [SITE_HOST],
    "max_concurrent": 2,
    "max_queued": 8,
    "default_timeout_ms": 10_000,
    "max_timeout_ms": 30_000,
    "js_wait_ms": 3_000,
    "max_html_chars": 300_000,
    "max_text_chars": 20_000,
    "max_screenshot_height": 5_000,
    "idle_close_seconds": 120,
}
PUBLIC_ADDRESS = "93.184.215.14"  # a global address no test ever connects to


def only_warm_contexts_left(service: CrawlService, timeout: float = 10.0) -> bool:
    """Whether, once the warm pool has refilled, the only browser contexts left are the pool's
    (made ahead, never used by a crawl): every crawl's own context was closed."""
    deadline = time.monotonic() + timeout
    while True:
        browser = service.browser.browser
        left = set(browser.contexts) if browser is not None else set()
        if left <= set(service.warm.contexts()) or time.monotonic() > deadline:
            return left <= set(service.warm.contexts())
        time.sleep(0.1)


class FakeDns:
    """DNS is outside the machine: names under .test answer as the tests need, the rest goes
    to the system resolver. `rebind.test` answers a public address once, then loopback."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        count = self.calls[host] = self.calls.get(host, 0) + 1
        if host == "rebind.test":
            return [PUBLIC_ADDRESS] if count == 1 else ["127.0.0.1"]
        if host == "mixed.test":
            return [PUBLIC_ADDRESS, "127.0.0.1"]
        if host == "metadata.test":
            return ["169.254.169.254"]
        return await system_resolver(host, port)


@dataclass
class CrawlApi:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    data_dir: Path

    @property
    def service(self) -> CrawlService:
        service: CrawlService = self.app.state.crawl
        return service

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def crawl(self, url: str, **fields: Any) -> httpx.Response:
        with self.client() as http:
            return http.post("/api/crawl", json={"url": url, **fields})

    def stop(self) -> list[int]:
        """Stops the server; returns what is left of the browser's processes (should be none)."""
        pid = self.service.browser.pid
        self.server.should_exit = True
        self.thread.join(60)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return process_group(pid) if pid else []


def start_api(
    crawl: dict[str, Any], resolver: Resolver = system_resolver, **sections: Any
) -> CrawlApi:
    data_dir = Path(tempfile.mkdtemp(prefix="homelab-crawl-"))
    no_triton = {"url": f"127.0.0.1:{free_port()}"}
    settings = load_settings(None, data_dir=data_dir, crawl=crawl, triton=no_triton, **sections)
    app = create_app(settings, crawl_resolver=resolver)
    server, thread, url = serve_app(app)
    return CrawlApi(url, app, server, thread, data_dir)


@pytest.fixture(scope="session")
def trap() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def site(trap: Listener) -> Iterator[Site]:
    server = Site(trap.port)
    yield server
    server.close()


@pytest.fixture(scope="session")
def tree(trap: Listener) -> Iterator[Tree]:
    server = Tree(trap.port)
    yield server
    server.close()


@pytest.fixture(scope="session")
def fake_dns() -> FakeDns:
    return FakeDns()


@pytest.fixture(scope="session")
def api(fake_dns: FakeDns) -> Iterator[CrawlApi]:
    """The default address policy, with only the test site's loopback address allowed."""
    running = start_api(CRAWL, fake_dns)
    yield running
    running.stop()
