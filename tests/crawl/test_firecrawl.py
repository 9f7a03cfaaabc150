"""Firecrawl's own SDK (firecrawl-py 4.x) against the real service: /v2/scrape and /v2/map,
our API keys as its bearer tokens, its error shape."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.utils.error_handler import BadRequestError, UnauthorizedError

from frontend.core.config import SecuritySection
from frontend.core.security import Security, hash_key
from tests.crawl.conftest import CrawlApi
from tests.crawl.site import AD_TEXT, ARTICLE_BODY, Listener, Site
from tests.crawl.tree import Tree

KEY = "hlai_firecrawl-test-key-0123456789"


@pytest.fixture
def keyed(api: CrawlApi) -> Iterator[CrawlApi]:
    """The crawl API with one API key required (from loopback too)."""
    before = api.app.state.security
    api.app.state.security = Security(
        SecuritySection(api_keys=[{"key_hash": hash_key(KEY), "name": "firecrawl"}])
    )
    yield api
    api.app.state.security = before


def test_sdk_scrape_with_every_format(keyed: CrawlApi, site: Site) -> None:
    client = Firecrawl(api_key=KEY, api_url=keyed.url)
    document = client.scrape(
        site.url("/article"),
        formats=["markdown", "html", "rawHtml", "links", {"type": "screenshot", "full_page": True}],
    )
    assert document.markdown is not None and ARTICLE_BODY[0] in document.markdown
    assert AD_TEXT not in document.markdown  # onlyMainContent by default
    assert document.html is not None and "<script" not in document.html
    assert document.raw_html is not None and document.raw_html.startswith("<html")
    assert document.links is not None and site.url("/subscribe") in document.links
    assert document.screenshot is not None
    assert document.screenshot.startswith("data:image/png;base64,")
    png = base64.b64decode(document.screenshot.split(",", 1)[1])
    assert png.startswith(b"\x89PNG")
    metadata = document.metadata_typed
    assert metadata.title == "Herons return to the mill pond"
    assert metadata.description == "Herons are back in the valley."
    assert metadata.language == "en"
    assert metadata.source_url == site.url("/article")
    assert metadata.url == site.url("/article")
    assert metadata.status_code == 200


def test_sdk_scrape_follows_options(keyed: CrawlApi, site: Site) -> None:
    client = Firecrawl(api_key=KEY, api_url=keyed.url)
    whole = client.scrape(site.url("/article"), formats=["markdown"], only_main_content=False)
    assert whole.markdown is not None and AD_TEXT in whole.markdown
    echoed = client.scrape(
        site.url("/echo"), formats=["markdown"], headers={"X-Homelab-Test": "fc"}
    )
    assert echoed.markdown is not None and "X-Homelab-Test: fc" in echoed.markdown
    moved = client.scrape(site.url("/r301"), formats=["markdown"])
    assert moved.metadata_typed.url == site.url("/article")
    assert moved.metadata_typed.source_url == site.url("/r301")


def test_sdk_map(keyed: CrawlApi, tree: Tree) -> None:
    client = Firecrawl(api_key=KEY, api_url=keyed.url)
    result = client.map(tree.url("/"), search="orphan", limit=3)
    assert [link.url for link in result.links] == [tree.url(f"/orphan/{k}") for k in range(3)]
    everything = client.map(tree.url("/"))
    urls = [link.url for link in everything.links]
    assert tree.url("/s/0") in urls and tree.url("/orphan/9") in urls


def test_sdk_errors(keyed: CrawlApi, site: Site, trap: Listener) -> None:
    with pytest.raises(UnauthorizedError):
        Firecrawl(api_key="hlai_wrong-key-000000000000", api_url=keyed.url).scrape(
            site.url("/article")
        )
    client = Firecrawl(api_key=KEY, api_url=keyed.url)
    with pytest.raises(BadRequestError, match="crawl target refused"):
        client.scrape(f"http://127.0.0.1:{trap.port}/")
    assert trap.hits == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "http://169.254.169.254/"}, 400, "INVALID_REQUEST"),
        ({"url": "{site}/article", "formats": ["json"]}, 400, "INVALID_REQUEST"),
        ({"url": "{site}/article", "actions": [{"type": "click"}]}, 400, "INVALID_REQUEST"),
        ({"url": "{site}/article", "headers": {"Host": "x"}}, 400, "INVALID_REQUEST"),
        ({"formats": ["markdown"]}, 400, "INVALID_REQUEST"),
        ({"url": "http://no-such-host.invalid/"}, 502, "SCRAPE_DNS_RESOLUTION_ERROR"),
        ({"url": "{site}/no-answer", "timeout": 1000}, 408, "SCRAPE_TIMEOUT"),
    ],
)
def test_errors_in_firecrawl_shape(
    keyed: CrawlApi, site: Site, body: dict[str, object], status: int, code: str
) -> None:
    if isinstance(body.get("url"), str):
        body = {**body, "url": str(body["url"]).format(site=site.url("").rstrip("/"))}
    response = httpx.post(
        f"{keyed.url}/v2/scrape",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["success"] is False and payload["code"] == code
    assert isinstance(payload["error"], str) and payload["error"]
    assert payload["request_id"]


def test_unauthorized_in_firecrawl_shape(keyed: CrawlApi, site: Site) -> None:
    response = httpx.post(f"{keyed.url}/v2/map", json={"url": site.url("/")})
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["code"] == "UNAUTHORIZED"
