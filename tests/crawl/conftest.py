"""The crawl API served over real HTTP (no Triton needed), a real Chromium, loopback sites."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from frontend.core.config import Settings, load_settings
from frontend.core.errors import install_exception_handlers
from frontend.core.middleware import RequestContextMiddleware
from frontend.crawl.browser import process_group
from frontend.crawl.policy import Resolver, system_resolver
from frontend.crawl.routes import router as crawl_router
from frontend.crawl.service import CrawlService
from tests.crawl.site import SITE_HOST, Listener, Site
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


def crawl_app(settings: Settings, resolver: Resolver = system_resolver) -> FastAPI:
    """What create_app wires for crawling, without Triton."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.crawl = CrawlService(settings.crawl, resolver)
        await app.state.crawl.start()
        try:
            yield
        finally:
            await app.state.crawl.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.limits.max_body_bytes)
    install_exception_handlers(app)
    app.include_router(crawl_router)
    return app


@dataclass
class CrawlApi:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

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
        return process_group(pid) if pid else []


def start_api(crawl: dict[str, Any], resolver: Resolver = system_resolver) -> CrawlApi:
    settings = load_settings(None, crawl=crawl)
    app = crawl_app(settings, resolver)
    server, thread, url = serve_app(app)
    return CrawlApi(url, app, server, thread)


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
def fake_dns() -> FakeDns:
    return FakeDns()


@pytest.fixture(scope="session")
def api(fake_dns: FakeDns) -> Iterator[CrawlApi]:
    """The default address policy, with only the test site's loopback address allowed."""
    running = start_api(CRAWL, fake_dns)
    yield running
    running.stop()
