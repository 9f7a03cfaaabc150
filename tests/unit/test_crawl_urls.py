"""URL normalization and scope of site crawls, and robots.txt rules (pure functions)."""

from __future__ import annotations

import pytest
from protego import Protego

from frontend.crawl.robots import Robots
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
        ("http:///x", None),
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
