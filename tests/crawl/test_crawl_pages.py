"""Real pages on loopback through the real browser: text, JS, redirects, partial loads, limits."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.crawl.conftest import CrawlApi
from tests.crawl.site import AD_TEXT, ARTICLE_BODY, COMMENT_TEXT, JS_TEXT, SIDEBAR_TEXT, Site


def test_article_keeps_the_body_and_drops_boilerplate(api: CrawlApi, site: Site) -> None:
    response = api.crawl(site.url("/article"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == site.url("/article")
    assert body["status_code"] == 200
    assert body["redirects"] == []
    assert body["title"] == "Herons return to the mill pond"
    assert body["text_source"] == "article"
    for sentence in ARTICLE_BODY:
        assert sentence in body["text"]
    for boilerplate in (AD_TEXT, COMMENT_TEXT, "All rights reserved", "Subscribe"):
        assert boilerplate not in body["text"]
    assert body["metadata"] == {"description": "Herons are back in the valley.", "language": "en"}
    assert body["partial"] is False and body["truncated"] is False
    assert body["blocked_requests"] == 0
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["fetch_time_ms"] > 0
    assert "screenshot_base64" not in body and "markdown" not in body and "links" not in body


def test_markdown_and_links(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/article"), markdown=True).json()
    assert body["markdown"].startswith("# Herons return to the mill pond")
    assert ARTICLE_BODY[0] in body["markdown"]
    body = api.crawl(site.url("/links"), links=True).json()
    assert body["links"] == [
        {"url": site.url("/article"), "text": "Article"},
        {"url": "https://example.org/x?y=1", "text": "Elsewhere"},
    ]


def test_inner_text_fallback_when_extraction_finds_little(api: CrawlApi, site: Site) -> None:
    # trafilatura keeps only the heading of this page: its text is in a sidebar
    body = api.crawl(site.url("/sidebar-only")).json()
    assert body["text_source"] == "inner_text"
    assert body["text"] == f"Status\n{SIDEBAR_TEXT}"


def test_script_inserted_text_needs_wait_for_js(api: CrawlApi, site: Site) -> None:
    waited = api.crawl(site.url("/js"), wait_for_js=True).json()
    assert JS_TEXT in waited["text"]
    assert "Static part of the page." in waited["text"]
    hurried = api.crawl(site.url("/js"), wait_for_js=False).json()
    assert "Static part of the page." in hurried["text"]
    assert JS_TEXT not in hurried["text"]


def test_redirect_chain(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/r301")).json()
    assert body["url"] == site.url("/article")
    assert body["status_code"] == 200
    assert body["redirects"] == [
        {"url": site.url("/r301"), "status_code": 301},
        {"url": site.url("/r302"), "status_code": 302},
    ]
    assert ARTICLE_BODY[2] in body["text"]


def test_meta_refresh_is_followed_and_read_as_one_page(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/refresh")).json()
    assert body["url"] == site.url("/article")
    assert body["title"] == "Herons return to the mill pond"
    assert ARTICLE_BODY[0] in body["text"]
    assert "has moved" not in body["text"]
    assert body["redirects"] == [{"url": site.url("/refresh"), "status_code": 200}]


def test_http_error_status_is_reported_not_raised(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/missing")).json()
    assert body["status_code"] == 404
    assert body["title"] == "Not here"


def test_image_that_never_loads_returns_the_page_as_partial(api: CrawlApi, site: Site) -> None:
    response = api.crawl(site.url("/slow-image"), timeout_ms=2500)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["partial"] is True
    assert body["title"] == "Page with a slow image"
    assert ARTICLE_BODY[1] in body["text"]
    assert body["fetch_time_ms"] < 2500 + 3000


def test_document_that_never_finishes_returns_what_rendered(api: CrawlApi, site: Site) -> None:
    response = api.crawl(site.url("/endless"), timeout_ms=2000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["partial"] is True
    assert body["title"] == "Endless"
    assert "The first part of an endless document arrived." in body["text"]


def test_huge_page_output_is_bounded(api: CrawlApi, site: Site) -> None:
    response = api.crawl(site.url("/huge"), markdown=True, links=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["truncated"] is True
    assert 1000 < len(body["text"]) <= 20_000
    assert len(body["markdown"]) <= 20_000
    assert "Paragraph 0 of a very large page." in body["text"]
    assert len(response.content) < 200_000


def _png_size(encoded: str) -> tuple[int, int]:
    data = base64.b64decode(encoded)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def test_screenshot_is_a_png_of_the_viewport(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/tall"), screenshot=True).json()
    assert _png_size(body["screenshot_base64"]) == (1280, 800)


def test_full_page_screenshot_covers_the_page_up_to_the_cap(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/tall"), screenshot=True, full_page=True).json()
    assert _png_size(body["screenshot_base64"]) == (1280, 2500)
    body = api.crawl(site.url("/very-tall"), screenshot=True, full_page=True).json()
    assert _png_size(body["screenshot_base64"]) == (1280, 5000)


def test_each_crawl_has_its_own_context(api: CrawlApi, site: Site) -> None:
    """Contexts made ahead (crawl.warm_contexts) serve one crawl each: cookies and storage a
    page leaves behind never reach the next crawl, nor do a request's cookies."""
    warm = api.service.warm
    taken = warm.taken
    for _ in range(3):
        body = api.crawl(site.url("/state"), wait_for_js=False).json()
        assert body["text"] == "Found: no cookie, no storage"
    sent = {"cookies": {"session": "abc"}, "headers": {"X-Homelab-Test": "on a warm one"}}
    echo = api.crawl(site.url("/echo"), wait_for_js=False, **sent).json()
    assert "Cookie: session=abc" in echo["text"]
    assert "X-Homelab-Test: on a warm one" in echo["text"]
    echo = api.crawl(site.url("/echo"), wait_for_js=False).json()
    assert "Cookie: -" in echo["text"] and "X-Homelab-Test: -" in echo["text"]
    assert warm.taken >= taken + 2  # (most of) the crawls took prepared contexts
