"""The plain fetches of site crawls (robots.txt, sitemaps) go through the filtering proxy:
redirects and https tunnels to refused addresses never connect."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from frontend.crawl.fetch import Fetcher, RefusedFetch, _gunzip
from frontend.crawl.policy import CrawlPolicy, system_resolver
from frontend.crawl.sitemap import parse_sitemap
from tests.crawl.site import SITE_HOST, Listener, Site

POLICY = CrawlPolicy(False, [SITE_HOST])


async def _get(url: str, max_bytes: int = 1 << 20) -> object:
    async with Fetcher(POLICY, system_resolver, "test", True, timeout=5) as fetcher:
        return await fetcher.get(url, max_bytes)


def test_a_page_is_fetched_through_the_proxy(site: Site) -> None:
    fetched = asyncio.run(_get(site.url("/r301")))
    assert fetched is not None
    assert fetched.url == site.url("/article") and fetched.status == 200  # type: ignore[attr-defined]
    cut = asyncio.run(_get(site.url("/huge"), 1000))
    assert len(cut.body) == 1000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{trap}/robots.txt",
        "https://127.0.0.1:{trap}/sitemap.xml",
        "http://169.254.169.254/latest/meta-data/",
        "{site}/to-trap",
        "{site}/to-trap-by-name",
    ],
)
def test_refused_targets_and_hops_never_connect(site: Site, trap: Listener, url: str) -> None:
    with pytest.raises(RefusedFetch):
        asyncio.run(_get(url.format(trap=trap.port, site=site.url("").rstrip("/"))))
    assert trap.hits == 0


def test_unreachable_hosts_are_none(site: Site) -> None:
    assert asyncio.run(_get(site.url("/to-nowhere"))) is None
    with pytest.raises(RefusedFetch):
        asyncio.run(_get("ftp://example.org/"))


def test_sitemap_parsing_is_safe_and_complete() -> None:
    urlset = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc> https://a.test/1 </loc></url><url><loc>&e;</loc></url></urlset>"
    )
    pages, children = parse_sitemap(urlset)
    assert pages == ["https://a.test/1"] and children == []
    index = b"<sitemapindex><sitemap><loc>https://a.test/s.xml</loc></sitemap></sitemapindex>"
    assert parse_sitemap(index) == ([], ["https://a.test/s.xml"])
    assert parse_sitemap(b"https://a.test/x\nnot a url\nhttp://a.test/y\n") == (
        ["https://a.test/x", "http://a.test/y"],
        [],
    )
    assert parse_sitemap(b"<not xml") == ([], [])


def test_gzip_sitemaps_are_inflated_up_to_the_limit() -> None:
    body = gzip.compress(b"https://a.test/x\n" * 1000)
    assert _gunzip(body, 1 << 20).count(b"https://") == 1000
    assert len(_gunzip(gzip.compress(b"0" * 10**6), 5000)) == 5000  # a bomb stops there
    assert _gunzip(b"plain", 100) == b"plain"
