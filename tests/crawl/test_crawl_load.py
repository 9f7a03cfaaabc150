"""4 concurrent clients x 40 pages: nothing leaks (contexts, proxies, Chromium processes) and
memory returns near idle."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from frontend.crawl.browser import process_group
from tests.crawl.conftest import start_api
from tests.crawl.site import ARTICLE_BODY, Site

CLIENTS = 4
PAGES = 40


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


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
        idle_processes = len(process_group(pid))
        idle_pss = pss_mib(process_group(pid))
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
        assert browser.browser is not None and browser.browser.contexts == []
        deadline = time.monotonic() + 10
        while len(process_group(pid)) > idle_processes and time.monotonic() < deadline:
            time.sleep(0.2)
        after_processes = len(process_group(pid))
        after_pss = pss_mib(process_group(pid))
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
