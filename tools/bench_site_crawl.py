"""The site-crawl target: a 200-page loopback site (tests/crawl/tree.py: sitemaps, a robots.txt
that disallows a folder, duplicate URLs, a redirect loop, a slow page, links and redirects to
refused addresses) crawled through POST /api/crawl/site by the real service.

    python -m tools.bench_site_crawl [--sections 10] [--pages 18] [--concurrency 2]

Prints the summary line, pages/s, whether every page loaded once, whether a refused address
was ever reached (a listener on 127.0.0.1 counts connections), and the service's Chromium
process count and PSS sampled through the run (first and last quarter).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil

from frontend.models.stubs import resident_bytes
from tests.crawl.site import SITE_HOST, Listener
from tests.crawl.tree import Tree
from tools.benchlib import running_service


def chromium_pids(service_pid: int) -> list[int]:
    """The service's own Chromium processes (other programs' browsers are not counted)."""
    try:
        children = psutil.Process(service_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    pids = []
    for child in children:
        try:
            if "chromium" in " ".join(child.cmdline()[:1]):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", type=int, default=10)
    parser.add_argument("--pages", type=int, default=18)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    trap = Listener()
    tree = Tree(trap.port, args.sections, args.pages)
    crawl = {"allowed_hosts": [SITE_HOST], "max_concurrent": args.concurrency}
    samples: list[tuple[int, float]] = []
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        work = Path(tmp)
        with running_service(work, work / "data", {}, {"crawl": crawl}) as (url, service):

            def sample() -> None:
                while not stop.wait(0.5):
                    pids = chromium_pids(service.pid)
                    if pids:
                        samples.append((len(pids), resident_bytes(pids) / 2**20))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            body = {
                "url": tree.url("/"),
                "max_pages": 1000,
                "max_depth": 10,
                "allow_external": True,
                "concurrency": args.concurrency,
                "page": {"wait_for_js": False},
            }
            started = time.monotonic()
            pages: list[dict[str, object]] = []
            summary: dict[str, object] = {}
            with (
                httpx.Client(base_url=url, timeout=None) as http,
                http.stream("POST", "/api/crawl/site", json=body) as response,
            ):
                response.raise_for_status()
                for line in response.iter_lines():
                    item = orjson.loads(line)
                    if item["type"] == "page":
                        pages.append(item["page"])
                    else:
                        summary = item
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join(5)
    loaded = [p for p in pages if "error" not in p]
    expected = tree.pages_loaded()
    paths = sorted(str(p["url"]).split("/", 3)[3].split("?")[0] for p in loaded)
    complete = paths == sorted(path.lstrip("/") for path in expected)
    private = sum(n for path, n in tree.hits.items() if path.startswith("/private"))
    tree.close()
    trap.close()
    print(orjson.dumps(summary).decode())
    print(
        f"{len(loaded)} pages loaded (+{len(pages) - len(loaded)} failed) in {elapsed:.1f} s: "
        f"{len(loaded) / elapsed:.2f} pages/s; every page once: {complete}; "
        f"disallowed folder requests: {private}; connections to the refused listener: "
        f"{trap.hits}"
    )
    if samples:
        quarter = max(1, len(samples) // 4)
        counts = [c for c, _ in samples]
        pss = [m for _, m in samples]
        print(
            f"Chromium processes {min(counts)}..{max(counts)}; PSS max first quarter "
            f"{max(pss[:quarter]):.0f} MiB, last quarter {max(pss[-quarter:]):.0f} MiB, "
            f"overall max {max(pss):.0f} MiB ({len(samples)} samples)"
        )
    return 0 if complete and trap.hits == 0 and private == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
