"""Firecrawl's v1 API with firecrawl-py's own V1FirecrawlApp (the client Dify's and older
integrations' code mirrors) against a real browser and the test site."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from firecrawl.v1 import V1FirecrawlApp
from firecrawl.v1.client import V1ScrapeOptions

from tests.crawl.conftest import CrawlApi
from tests.crawl.site import Listener
from tests.crawl.test_crawl_jobs import KEY, client, keyed  # noqa: F401 (keyed: a fixture)
from tests.crawl.tree import Tree


def sdk(api: CrawlApi) -> V1FirecrawlApp:
    return V1FirecrawlApp(api_key=KEY, api_url=api.url)


def test_scrape_and_map(keyed: CrawlApi, tree: Tree) -> None:  # noqa: F811
    page = sdk(keyed).scrape_url(tree.url("/s/1"), formats=["markdown", "links"])
    assert page.markdown and "Section 1" in page.markdown
    assert page.links and tree.url("/s/1/p/0") in page.links
    assert page.metadata and page.metadata["statusCode"] == 200
    mapped = sdk(keyed).map_url(tree.url("/"), ignore_sitemap=True)
    assert mapped.success and all(isinstance(link, str) for link in mapped.links)
    assert tree.url("/s/0") in mapped.links


def test_crawl_waits_and_pages_through_next(keyed: CrawlApi, tree: Tree) -> None:  # noqa: F811
    """crawl_url polls GET /v1/crawl/{id} and follows `next` (3 documents a page here)."""
    status = sdk(keyed).crawl_url(
        tree.url("/s/0"),
        limit=5,
        max_discovery_depth=1,
        ignore_sitemap=True,
        scrape_options=V1ScrapeOptions(formats=["markdown"]),
        poll_interval=1,
    )
    assert status.status == "completed" and status.completed == 5
    sources = {document.metadata["sourceURL"] for document in status.data}  # type: ignore[index]
    assert len(status.data) == 5 and tree.url("/s/0") in sources
    assert all(urlsplit(url).path.startswith("/s/0") for url in sources)  # below the start URL


def test_max_depth_limits_the_path_depth_below_the_start_url(
    keyed: CrawlApi,  # noqa: F811
    tree: Tree,
) -> None:
    """v1's maxDepth counts path segments: from / with maxDepth 1, /s/0 and /s/0/p/0 (two
    and four segments) are left out; /slow (one) is crawled, and so is /moved, whose
    redirect ends on /s/1 (the page is kept under its final URL, as Firecrawl does)."""
    status = sdk(keyed).crawl_url(
        tree.url("/"), limit=20, max_depth=1, ignore_sitemap=True, poll_interval=1
    )
    paths = {urlsplit(d.metadata["sourceURL"]).path for d in status.data}  # type: ignore[index]
    assert status.status == "completed", status
    assert {"/", "/slow"} <= paths
    assert not paths & {"/s/0", "/s/2", "/s/0/p/0", "/s/1/p/0"}, paths


def test_start_status_cancel_and_errors(keyed: CrawlApi, tree: Tree) -> None:  # noqa: F811
    app = sdk(keyed)
    started = app.async_crawl_url(tree.url("/"), limit=50, delay=1, max_concurrency=1)
    assert started.success and started.id
    assert started.url == f"{keyed.url}/v1/crawl/{started.id}"
    assert app.check_crawl_status(started.id).status in ("scraping", "completed")
    assert app.cancel_crawl(started.id)["status"] == "cancelled"
    assert app.check_crawl_errors(started.id).errors == []
    with client(keyed) as http:  # the v2 route sees the same job
        assert http.get(f"/v2/crawl/{started.id}").json()["status"] == "cancelled"


def test_batch_scrape(keyed: CrawlApi, tree: Tree) -> None:  # noqa: F811
    urls = [tree.url(f"/orphan/{k}") for k in range(3)]
    job = sdk(keyed).batch_scrape_urls(urls, formats=["markdown"], poll_interval=1)
    assert job.status == "completed" and job.completed == 3
    assert sorted(d.metadata["sourceURL"] for d in job.data) == urls  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/scrape", {"url": "http://169.254.169.254/"}, 400, "INVALID_REQUEST"),
        ("/v1/scrape", {"formats": ["markdown"]}, 400, "INVALID_REQUEST"),
        ("/v1/map", {"url": "http://[::1"}, 400, "INVALID_REQUEST"),
        ("/v1/crawl", {"url": "http://[::1", "maxDepth": 2}, 400, "INVALID_REQUEST"),
        ("/v1/crawl", {"url": "http://x.lan/", "maxDepth": -1}, 400, "INVALID_REQUEST"),
        ("/v1/batch/scrape", {"urls": []}, 400, "INVALID_REQUEST"),
        ("/v1/crawl/nope", None, 404, "NOT_FOUND"),
    ],
)
def test_errors_have_firecrawls_shape(
    keyed: CrawlApi,  # noqa: F811
    trap: Listener,
    path: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    with client(keyed) as http:
        response = http.get(path) if body is None else http.post(path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["success"] is False and payload["code"] == code, payload
    assert payload["error"] and payload["request_id"]
    assert trap.hits == 0


def test_without_a_key_it_is_firecrawls_401(keyed: CrawlApi, tree: Tree) -> None:  # noqa: F811
    response = httpx.post(f"{keyed.url}/v1/scrape", json={"url": tree.url("/")})
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["code"] == "UNAUTHORIZED"
