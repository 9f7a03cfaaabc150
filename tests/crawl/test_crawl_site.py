"""Site crawls (POST /api/crawl/site) over the generated loopback tree: the frontier, robots.txt,
sitemaps, dedup, limits, and the address policy on every fetch, with flat memory."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest

from frontend.crawl.browser import process_group
from frontend.models.stubs import resident_bytes
from tests.crawl.conftest import CrawlApi, only_warm_contexts_left
from tests.crawl.site import Listener
from tests.crawl.tree import FAILED, Tree


def crawl_site(api: CrawlApi, **body: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with (
        api.client() as http,
        http.stream("POST", "/api/crawl/site", json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            item = orjson.loads(line)
            if item["type"] == "page":
                pages.append(item["page"])
                progress = item["progress"]
                assert progress["done"] + progress["failed"] == len(pages), progress
            else:
                assert item["type"] == "summary", item
                summary = item
    return pages, summary


class MemorySampler:
    """Chromium's process count and PSS every 0.5 s while a crawl runs."""

    def __init__(self, api: CrawlApi) -> None:
        self.api = api
        self.samples: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            pid = self.api.service.browser.pid
            if pid:
                group = process_group(pid)
                self.samples.append((len(group), resident_bytes(group) / 2**20))


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"


def test_site_crawl_covers_the_tree_and_never_reaches_a_refused_address(
    api: CrawlApi, tree: Tree, trap: Listener
) -> None:
    hits_before = dict(tree.hits)
    with MemorySampler(api) as memory:
        pages, summary = crawl_site(
            api,
            url=tree.url("/"),
            max_pages=200,
            max_depth=5,
            allow_external=True,  # so the links to refused addresses are tried, and refused
            page={"wait_for_js": False},
        )
    loaded = [p for p in pages if "error" not in p]
    failed = {p["url"]: p["error"] for p in pages if "error" in p}
    loaded_paths = [_path(p["url"]).split("?")[0] for p in loaded]
    assert sorted(loaded_paths) == sorted(tree.pages_loaded())  # each page once
    assert summary["status"] == "completed" and summary["stop_reason"] == "done"
    assert summary["done"] == len(loaded) and summary["failed"] == len(failed)
    # robots.txt: /private/a and /private/b (links) and /private/c (sitemap) were skipped
    assert summary["skipped_robots"] == 3
    assert not any(path.startswith("/private") for path in tree.hits)
    # /moved redirects to /s/1: one page; tracking parameters, fragments and query order merged
    assert summary["duplicates"] == 1
    requests = {path: tree.hits[path] - hits_before.get(path, 0) for path in tree.pages_loaded()}
    requests["/s/1"] -= 1  # the browser followed /moved there before it could know
    assert set(requests.values()) == {1}, requests
    # the sitemap index named in robots.txt brought the orphans
    assert {f"/orphan/{k}" for k in range(10)} <= set(loaded_paths)
    # failures: the redirect loop, the redirect to loopback, and every refused link
    assert failed[tree.url(FAILED[0])]["details"]["net_error"] == "ERR_TOO_MANY_REDIRECTS"
    assert failed[tree.url(FAILED[1])]["details"]["rule"] == "loopback"
    assert failed["http://169.254.169.254/latest/meta-data/"]["details"]["rule"] == "link_local"
    assert failed["http://10.0.0.1/admin"]["details"]["rule"] == "private"
    assert failed[f"http://127.0.0.1:{trap.port}/secret"]["details"]["rule"] == "loopback"
    assert failed[f"http://127.0.0.1:{trap.port}/from-sitemap"]["details"]["rule"] == "loopback"
    assert len(failed) == 6
    assert trap.hits == 0
    # every page as /api/crawl returns it, plus its depth; no links unless asked
    home = next(p for p in loaded if _path(p["url"]) == "/")
    assert home["depth"] == 0 and home["title"] == "Home" and home["status_code"] == 200
    assert "links" not in home and "fetch_time_ms" in home
    # flat memory: a bounded number of Chromium processes and no PSS growth through the run
    assert len(memory.samples) >= 4, memory.samples
    counts = [count for count, _ in memory.samples]
    pss = [mib for _, mib in memory.samples]
    quarter = max(1, len(pss) // 4)
    print(
        f"\n{len(pages)} pages in {summary['elapsed_ms'] / 1000:.1f}s; chromium processes "
        f"{min(counts)}..{max(counts)}; PSS first quarter max {max(pss[:quarter]):.0f} MiB, "
        f"last quarter max {max(pss[-quarter:]):.0f} MiB"
    )
    assert max(counts) <= 16
    # Chromium grows while its first contexts and renderers start (warm contexts are made
    # ahead): the baseline is the first half of the run, and the whole run stays under a cap.
    half = max(1, len(pss) // 2)
    assert max(pss[-quarter:]) < max(pss[:half]) * 1.3 + 64
    assert max(pss) < 1024


def test_robots_ignored_include_paths_and_the_page_limit(api: CrawlApi, tree: Tree) -> None:
    pages, summary = crawl_site(
        api,
        url=tree.url("/"),
        max_depth=1,
        sitemap="skip",
        ignore_robots=True,
        include_paths=["^/private/"],
        page={"wait_for_js": False, "links": True},
    )
    assert sorted(_path(p["url"]) for p in pages) == ["/", "/private/a", "/private/b"]
    assert summary["stop_reason"] == "done" and summary["skipped_robots"] == 0
    assert all(isinstance(p["links"], list) for p in pages)

    pages, summary = crawl_site(
        api, url=tree.url("/"), max_pages=3, sitemap="only", page={"wait_for_js": False}
    )
    assert len(pages) == 3
    assert summary["status"] == "stopped" and summary["stop_reason"] == "max_pages"
    assert summary["queued"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_pages": 100_000}, "max_pages"),
        ({"include_paths": ["("]}, "include_paths"),
        ({"sitemap": "sometimes"}, "sitemap"),
        ({"page": {"screenshot": True, "block_resources": ["image"]}}, "block_resources"),
        ({"page": {"timeout_ms": 10**7}}, None),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_site_crawls_are_refused_before_the_stream(
    api: CrawlApi, tree: Tree, body: dict[str, Any], field: str | None
) -> None:
    with api.client() as http:
        response = http.post("/api/crawl/site", json={"url": tree.url("/"), **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    if field is not None:
        assert field in [e["field"] for e in error["details"]["errors"]], error


def test_a_refused_start_url_is_a_400(api: CrawlApi, trap: Listener) -> None:
    with api.client() as http:
        response = http.post("/api/crawl/site", json={"url": f"http://127.0.0.1:{trap.port}/"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["rule"] == "loopback"
    assert trap.hits == 0


def test_map_lists_sitemap_and_link_urls(api: CrawlApi, tree: Tree, trap: Listener) -> None:
    with api.client() as http:
        response = http.post("/api/crawl/map", json={"url": tree.url("/")})
        assert response.status_code == 200, response.text
        urls = [link["url"] for link in response.json()["links"]]
        assert urls[0] == tree.url("/")
        assert len(urls) == len(set(urls))
        # links of the start page (same host only) and both sitemaps (index from robots.txt)
        assert tree.url("/s/0") in urls and tree.url("/orphan/9") in urls
        assert tree.url("/slow") in urls and tree.url("/private/c") in urls
        assert not any("127.0.0.1" in u or "169.254" in u for u in urls)
        searched = http.post(
            "/api/crawl/map", json={"url": tree.url("/"), "search": "ORPHAN", "limit": 4}
        ).json()["links"]
        assert [link["url"] for link in searched] == [tree.url(f"/orphan/{k}") for k in range(4)]
    assert trap.hits == 0


def test_closing_the_stream_stops_the_crawl(api: CrawlApi, tree: Tree) -> None:
    body = {
        "url": tree.url("/"),
        "delay_ms": 400,
        "concurrency": 1,
        "sitemap": "skip",
        "ignore_query_parameters": True,
        "page": {"wait_for_js": False},
    }
    with (
        api.client() as http,
        http.stream("POST", "/api/crawl/site", json=body) as response,
    ):
        first = orjson.loads(next(response.iter_lines()))
        assert first["type"] == "page" and first["page"]["title"] == "Home"
    time.sleep(2.0)  # the page in flight (if any) finishes
    settled = tree.hits.total()
    time.sleep(2.0)
    assert tree.hits.total() == settled  # nothing more was loaded
    assert only_warm_contexts_left(api.service)


def test_the_host_delay_spaces_page_loads(api: CrawlApi, tree: Tree) -> None:
    start = len(tree.log)
    pages, summary = crawl_site(
        api,
        url=tree.url("/"),
        max_pages=4,
        delay_ms=800,
        concurrency=2,
        sitemap="skip",
        page={"wait_for_js": False, "block_resources": ["image", "font"]},
    )
    assert len(pages) == 4 and summary["stop_reason"] == "max_pages"
    loads = [t for t, path in tree.log[start:] if path != "/robots.txt"]
    assert len(loads) >= 4
    # two slots, but one page started per delay: 3 delays between the first and the last
    # (a page's request reaches the site a browser-dependent moment after its start)
    assert loads[3] - loads[0] >= 3 * 0.8 - 0.5, loads
