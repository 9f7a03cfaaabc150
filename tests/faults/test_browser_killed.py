"""Chromium killed (SIGKILL, by its pid) while several crawls of a slow loopback page are in
flight: each of them ends in time with a clean 502/503/504 in the error envelope, the next crawls
succeed with a fresh browser, and nothing of the old one is left."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from frontend.crawl.browser import process_group
from tests.crawl.conftest import CrawlApi, start_api
from tests.crawl.site import ARTICLE_BODY, article_html, send
from tests.faults.conftest import wait_until

IN_FLIGHT = 4
SLOW_SECONDS = 6.0  # the slow page answers after this (or when the site closes)
TIMEOUT_MS = 8000  # each crawl's timeout_ms


class SlowSite:
    """127.0.0.1: /article at once, /slow after SLOW_SECONDS; counts the requests per path."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with site._lock:
                    site.hits[path] += 1
                if path == "/slow":
                    site.release.wait(SLOW_SECONDS)
                found = path in ("/slow", "/article")
                with contextlib.suppress(OSError):  # the browser that asked may be gone
                    send(self, 200 if found else 404, article_html() if found else "not found")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_site() -> Iterator[SlowSite]:
    site = SlowSite()
    yield site
    site.close()


@pytest.fixture
def crawler() -> Iterator[CrawlApi]:
    running = start_api(
        {
            "allowed_hosts": ["127.0.0.1"],
            "max_concurrent": IN_FLIGHT,
            "max_queued": IN_FLIGHT,
            "default_timeout_ms": TIMEOUT_MS,
            "idle_close_seconds": 120,
        }
    )
    yield running
    assert running.stop() == []  # no Chromium left behind


def crawl_article(api: CrawlApi, site: SlowSite) -> int:
    response = api.crawl(site.url("/article"))
    assert response.status_code == 200, response.text
    assert ARTICLE_BODY[0] in response.json()["text"]
    pid = api.service.browser.pid
    assert pid is not None and process_group(pid)
    return pid


def test_crawls_in_flight_when_chromium_is_killed_fail_cleanly_and_the_next_ones_succeed(
    crawler: CrawlApi, slow_site: SlowSite
) -> None:
    browser = crawler.service.browser
    old = crawl_article(crawler, slow_site)
    launches = browser.launches
    outcomes: list[tuple[int, dict[str, object], float]] = []

    def crawl_slow(_: int) -> None:
        started = time.monotonic()
        with crawler.client() as http:
            response = http.post(
                "/api/crawl", json={"url": slow_site.url("/slow"), "timeout_ms": TIMEOUT_MS}
            )
        outcomes.append((response.status_code, response.json(), time.monotonic() - started))

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        futures = [pool.submit(crawl_slow, i) for i in range(IN_FLIGHT)]
        assert wait_until(lambda: slow_site.count("/slow") >= IN_FLIGHT, 15), slow_site.hits
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        for future in futures:
            future.result(timeout=TIMEOUT_MS / 1000 + 15)
    after_kill = time.monotonic() - killed

    # Not the site's fault (no 502 blaming the page): the service's browser failed, retry.
    statuses = [status for status, _, _ in outcomes]
    assert statuses == [503] * IN_FLIGHT, outcomes
    for _, body, seconds in outcomes:
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "SERVICE_UNAVAILABLE", body
        assert error["request_id"] and "browser" in str(error["message"])
        assert seconds < TIMEOUT_MS / 1000, f"a crawl took {seconds:.1f} s"
    assert after_kill < SLOW_SECONDS  # they failed when the browser died, not at the page's pace

    # A fresh browser, launched once for the next crawls; the old one is entirely gone.
    new = crawl_article(crawler, slow_site)
    assert new != old
    assert crawl_article(crawler, slow_site) == new
    assert browser.launches == launches + 1
    assert wait_until(lambda: not process_group(old), 5)
    print(f"chromium killed: {statuses} within {after_kill:.2f} s; then 200 with pid {new}")
