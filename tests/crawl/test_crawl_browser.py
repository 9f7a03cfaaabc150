"""The shared browser's lifecycle: lazy launch, crash and hang replacement, the queue limit,
idle close and shutdown, with the real Chromium processes checked."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from frontend.crawl.browser import process_group
from tests.crawl.conftest import CrawlApi, start_api
from tests.crawl.site import ARTICLE_BODY, Site

IDLE_SECONDS = 1.5


@pytest.fixture(scope="module")
def lifecycle_api() -> Iterator[CrawlApi]:
    """allow_private_networks (no allowed_hosts), one crawl at a time, a queue of one."""
    crawl = {
        "allow_private_networks": True,
        "max_concurrent": 1,
        "max_queued": 1,
        "idle_close_seconds": IDLE_SECONDS,
        "default_timeout_ms": 10_000,
    }
    running = start_api(crawl)
    yield running
    assert running.stop() == []


def _wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


def _crawl_ok(api: CrawlApi, site: Site) -> int:
    response = api.crawl(site.url("/article"))
    assert response.status_code == 200, response.text
    assert ARTICLE_BODY[0] in response.json()["text"]
    pid = api.service.browser.pid
    assert pid is not None and process_group(pid)
    return pid


def test_browser_starts_lazily_and_private_networks_can_be_opened(
    lifecycle_api: CrawlApi, site: Site
) -> None:
    browser = lifecycle_api.service.browser
    if browser.pid is None:  # first test of the module: nothing launched at start-up
        assert browser.launches == 0
    _crawl_ok(lifecycle_api, site)
    assert browser.running


def test_crashed_browser_is_replaced(lifecycle_api: CrawlApi, site: Site) -> None:
    old = _crawl_ok(lifecycle_api, site)
    os.kill(old, signal.SIGKILL)
    new = _crawl_ok(lifecycle_api, site)  # the very next request succeeds
    assert new != old
    assert _wait_for(lambda: not process_group(old), 5)


def test_hung_browser_is_killed_and_replaced(lifecycle_api: CrawlApi, site: Site) -> None:
    old = _crawl_ok(lifecycle_api, site)
    os.kill(old, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = lifecycle_api.crawl(site.url("/article"), timeout_ms=1000)
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "CRAWL_TIMEOUT"
        assert time.monotonic() - started < 20
        assert _wait_for(lambda: not process_group(old), 5)  # killed, stopped or not
    finally:
        if process_group(old):
            os.killpg(old, signal.SIGKILL)
    new = _crawl_ok(lifecycle_api, site)
    assert new != old


def test_full_queue_answers_503(lifecycle_api: CrawlApi, site: Site) -> None:
    barrier = threading.Barrier(4)

    def post(_: int) -> httpx.Response:
        with lifecycle_api.client() as http:
            barrier.wait()
            return http.post("/api/crawl", json={"url": site.url("/no-answer"), "timeout_ms": 1500})

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, range(4)))
    codes = sorted(r.json()["error"]["code"] for r in responses)
    # one crawl runs, one waits in the queue, two are turned away at once
    assert codes == ["CRAWL_TIMEOUT", "CRAWL_TIMEOUT", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]
    assert {r.status_code for r in responses} == {503, 504}


def test_idle_browser_is_closed(lifecycle_api: CrawlApi, site: Site) -> None:
    pid = _crawl_ok(lifecycle_api, site)
    browser = lifecycle_api.service.browser
    assert _wait_for(lambda: not browser.running, IDLE_SECONDS + 5)
    assert _wait_for(lambda: not process_group(pid), 5)
    launches = browser.launches
    _crawl_ok(lifecycle_api, site)  # and comes back on the next crawl
    assert browser.launches == launches + 1


def test_shutdown_leaves_no_chromium(site: Site) -> None:
    running = start_api({"allowed_hosts": ["127.0.0.2"]})
    _crawl_ok(running, site)
    assert running.stop() == []


def test_one_renderer_per_page(lifecycle_api: CrawlApi, site: Site) -> None:
    """Chromium runs no browser-UI pages (omnibox popups) and no spare renderers: once the
    crawl is done, the renderers left are the warm contexts' blank pages."""
    pid = _crawl_ok(lifecycle_api, site)
    pool = lifecycle_api.service.settings.warm_contexts

    def renderers() -> list[list[str]]:
        found = []
        for member in process_group(pid):
            with contextlib.suppress(psutil.Error):
                argv = psutil.Process(member).cmdline()
                if "--type=renderer" in argv:
                    found.append(argv)
        return found

    warm = lifecycle_api.service.warm
    assert _wait_for(lambda: len(warm.contexts()) == pool, 10)
    time.sleep(1.0)  # the crawl's own renderer exits after its context closed
    found = renderers()
    assert len(found) == pool, [argv[1:3] for argv in found]
    assert not any("--top-chrome-webui" in argv for argv in found)
