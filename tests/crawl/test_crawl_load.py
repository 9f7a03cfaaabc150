"""4 concurrent clients x 40 pages: nothing leaks (contexts, proxies, Chromium processes) and
memory returns near idle."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from frontend.crawl.browser import process_group
from frontend.models.stubs import resident_bytes
from tests.crawl.conftest import only_warm_contexts_left, start_api
from tests.crawl.site import ARTICLE_BODY, Site

CLIENTS = 4
PAGES = 40


def pss_mib(pids: list[int]) -> float:
    return resident_bytes(pids) / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_concurrent_crawls_leave_nothing_behind(site: Site) -> None:
    api = start_api({"allowed_hosts": ["127.0.0.2"], "max_concurrent": CLIENTS, "max_queued": 8})
    try:
        paths = ["/article", "/js", "/r301", "/refresh"]

        def warm(_: int) -> None:
            assert api.crawl(site.url("/article")).status_code == 200

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(warm, range(CLIENTS)))
        browser = api.service.browser
        pid = browser.pid
        assert pid is not None
        time.sleep(1.5)
        idle_group = process_group(pid)  # one snapshot for both figures
        idle_processes, idle_pss = len(idle_group), pss_mib(idle_group)
        idle_fds = open_fds()

        def client(index: int) -> int:
            ok = 0
            with api.client() as http:
                for n in range(PAGES):
                    path = paths[(index + n) % len(paths)]
                    body = {"url": site.url(path), "screenshot": n % 5 == 0}
                    response = http.post("/api/crawl", json=body)
                    assert response.status_code == 200, response.text
                    ok += ARTICLE_BODY[0] in response.json()["text"] or path == "/js"
            return ok

        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            assert sum(pool.map(client, range(CLIENTS))) == CLIENTS * PAGES
        elapsed = time.monotonic() - started
        assert browser.pid == pid  # never replaced under load
        assert only_warm_contexts_left(api.service)
        deadline = time.monotonic() + 10
        while len(process_group(pid)) > idle_processes and time.monotonic() < deadline:
            time.sleep(0.2)
        after_group = process_group(pid)
        after_processes, after_pss = len(after_group), pss_mib(after_group)
        print(
            f"\n{CLIENTS}x{PAGES} crawls in {elapsed:.1f}s; chromium processes idle "
            f"{idle_processes} / after {after_processes}; PSS idle {idle_pss:.0f} MiB / after "
            f"{after_pss:.0f} MiB; fds idle {idle_fds} / after {open_fds()}"
        )
        assert after_processes <= idle_processes
        assert after_pss < idle_pss * 1.25 + 64
        assert open_fds() <= idle_fds + 8  # proxy listeners and their connections are closed
    finally:
        left = api.stop()
    assert left == []
