"""URL normalization and scope of site crawls, robots.txt rules, and Firecrawl's shapes
translated to ours (pure functions)."""

from __future__ import annotations

import asyncio

import pytest
from protego import Protego

from frontend.compat.firecrawl_schemas import CrawlBody, to_document
from frontend.core.errors import InvalidRequest
from frontend.crawl.fetch import Fetched
from frontend.crawl.robots import Robots, fetch_robots
from frontend.crawl.urls import in_scope, normalize, path_of


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a#top", "http://example.com:8080/a"),
        ("http://example.com/a?utm_source=x&b=2&a=1&fbclid=z", "http://example.com/a?a=1&b=2"),
        ("http://example.com./a?", "http://example.com/a"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("mailto:a@b.c", None),
        ("javascript:void(0)", None),
        ("http:///x", "http://x/"),  # as a browser reads it: the empty authority is skipped
        ("http://127.0.0.1:1\\@127.0.0.2:2/", "http://127.0.0.1:1/@127.0.0.2:2/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://example.com:99999/", None),
    ],
)
def test_normalize(url: str, expected: str | None) -> None:
    assert normalize(url) == expected


def test_normalize_can_drop_the_query() -> None:
    assert normalize("http://a.test/p?x=1", drop_query=True) == "http://a.test/p"


@pytest.mark.parametrize(
    ("host", "subdomains", "external", "expected"),
    [
        ("example.com", False, False, True),
        ("www.example.com", False, False, True),
        ("docs.example.com", False, False, False),
        ("docs.example.com", True, False, True),
        ("notexample.com", True, False, False),
        ("other.org", True, False, False),
        ("other.org", False, True, True),
    ],
)
def test_scope(host: str, subdomains: bool, external: bool, expected: bool) -> None:
    assert in_scope(host, "www.example.com", subdomains, external) is expected


def test_path_of() -> None:
    assert path_of("http://a.test") == "/"
    assert path_of("http://a.test/x/y?q=1#f") == "/x/y?q=1"


def test_robots_rules_for_our_agent() -> None:
    parser = Protego.parse(
        "User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n\n"
        "User-agent: HomelabAI\nDisallow: /no-bots/\n\nSitemap: https://a.test/s.xml\n"
    )
    robots = Robots(parser, allow_all=True, sitemaps=list(parser.sitemaps))
    assert robots.allowed("https://a.test/public", "HomelabAI")
    assert not robots.allowed("https://a.test/no-bots/x", "HomelabAI")
    assert not robots.allowed("https://a.test/private/x", "OtherBot")
    assert robots.delay_ms("OtherBot") == 2000
    assert robots.sitemaps == ["https://a.test/s.xml"]
    assert Robots(None, allow_all=False).allowed("https://a.test/", "HomelabAI") is False
    assert Robots(None, allow_all=True).allowed("https://a.test/", "HomelabAI") is True


def test_firecrawl_crawl_bodies_become_site_crawls() -> None:
    body = CrawlBody(
        url="https://a.test/docs/intro",
        limit=20,
        excludePaths=["^/docs/old/"],
        delay=1.5,
        scrapeOptions={"formats": ["markdown", "links"], "onlyMainContent": False},
        maxAge=1000,  # ignored, as Firecrawl's other fields
    )
    site = body.site_request(60_000)
    assert site.max_pages == 20 and site.delay_ms == 1500 and site.max_depth == 10
    assert site.include_paths == ["^/docs(/|$|\\?)"]  # the start's folder, as Firecrawl
    assert site.exclude_paths == ["^/docs/old/"]
    assert site.page.markdown and site.page.links and not site.page.only_main_content
    whole = CrawlBody(url="https://a.test/docs/intro", crawlEntireDomain=True)
    assert whole.site_request(60_000).include_paths is None
    with pytest.raises(InvalidRequest, match="format 'json'"):
        CrawlBody(url="https://a.test/", scrapeOptions={"formats": ["json"]}).site_request(1000)
    with pytest.raises(InvalidRequest, match="includePaths"):
        CrawlBody(url="https://a.test/", includePaths=["("]).site_request(1000)


def test_firecrawl_documents() -> None:
    result = {
        "url": "https://a.test/b",
        "status_code": 200,
        "title": "B",
        "metadata": {"description": None, "language": "en"},
        "markdown": "# B",
        "links": [{"url": "https://a.test/c", "text": "C"}],
        "partial": True,
    }
    document = to_document(result, "https://a.test/a", {"markdown", "links"}, "id-1")
    assert document["markdown"] == "# B" and document["links"] == ["https://a.test/c"]
    assert document["metadata"]["sourceURL"] == "https://a.test/a"
    assert document["metadata"]["url"] == "https://a.test/b"
    assert document["metadata"]["statusCode"] == 200 and "warning" in document


class _FakeFetcher:
    """Answers every GET with one status (and body), as a Fetcher would."""

    def __init__(self, status: int | None, body: bytes = b"") -> None:
        self.status = status
        self.body = body

    async def get(self, url: str, max_bytes: int) -> Fetched | None:
        return None if self.status is None else Fetched(url, self.status, self.body)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(404, True), (410, True), (500, False), (503, False), (None, False)],
)
def test_robots_per_rfc_9309(status: int | None, allowed: bool) -> None:
    robots = asyncio.run(fetch_robots(_FakeFetcher(status), "https://a.test"))  # type: ignore[arg-type]
    assert robots.allowed("https://a.test/x", "HomelabAI") is allowed


def test_robots_file_is_parsed() -> None:
    body = b"User-agent: *\nDisallow: /x/\nSitemap: https://a.test/map.xml\n"
    robots = asyncio.run(fetch_robots(_FakeFetcher(200, body), "https://a.test"))  # type: ignore[arg-type]
    assert not robots.allowed("https://a.test/x/1", "HomelabAI")
    assert robots.allowed("https://a.test/y", "HomelabAI")
    assert robots.sitemaps == ["https://a.test/map.xml"]
