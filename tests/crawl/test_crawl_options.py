"""Per-page options of POST /api/crawl: headers, cookies, User-Agent, mobile, waits, PDF,
rendered and narrowed HTML, and blocked resource types."""

from __future__ import annotations

import base64

import pytest

from frontend.core.config_sections import DEFAULT_USER_AGENT
from tests.crawl.conftest import CRAWL, CrawlApi, start_api
from tests.crawl.site import AD_TEXT, ARTICLE_BODY, COMMENT_TEXT, LATE_TEXT, Site


def test_headers_cookies_and_user_agent_reach_the_site(api: CrawlApi, site: Site) -> None:
    response = api.crawl(
        site.url("/echo"),
        headers={"X-Homelab-Test": "yes-please"},
        cookies={"session": "abc123"},
        user_agent="TestAgent/1.0",
        wait_for_js=False,
    )
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert "User-Agent: TestAgent/1.0" in text
    assert "X-Homelab-Test: yes-please" in text
    assert "Cookie: session=abc123" in text


def test_the_default_user_agent_is_a_real_chrome_and_mobile_says_so(
    api: CrawlApi, site: Site
) -> None:
    text = api.crawl(site.url("/echo"), wait_for_js=False).json()["text"]
    assert f"User-Agent: {DEFAULT_USER_AGENT}" in text and "Headless" not in text
    mobile = api.crawl(site.url("/echo"), wait_for_js=False, mobile=True).json()["text"]
    assert "Mobile Safari" in mobile and "Android" in mobile


def test_a_null_user_agent_setting_keeps_chromiums_own(site: Site) -> None:
    own = start_api({**CRAWL, "user_agent": None})
    try:
        text = own.crawl(site.url("/echo"), wait_for_js=False).json()["text"]
    finally:
        own.stop()
    assert "HeadlessChrome" in text


def test_wait_for_selector(api: CrawlApi, site: Site) -> None:
    found = api.crawl(site.url("/late"), wait_for_js=False, wait_for_selector="#late").json()
    assert LATE_TEXT in found["text"] and found["partial"] is False
    without = api.crawl(site.url("/late"), wait_for_js=False).json()
    assert LATE_TEXT not in without["text"]
    missing = api.crawl(
        site.url("/article"), wait_for_js=False, wait_for_selector="#never", timeout_ms=1500
    ).json()
    assert missing["partial"] is True and ARTICLE_BODY[0] in missing["text"]


def test_pdf_of_the_page(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/article"), pdf=True, wait_for_js=False).json()
    pdf = base64.b64decode(body["pdf_base64"])
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000


def test_html_and_narrowed_text(api: CrawlApi, site: Site) -> None:
    whole = api.crawl(
        site.url("/article"), html=True, markdown=True, only_main_content=False, wait_for_js=False
    ).json()
    assert whole["html"].startswith("<html") and "<script" not in whole["cleaned_html"]
    assert AD_TEXT in whole["text"] and COMMENT_TEXT in whole["text"]
    assert whole["text_source"] == "cleaned_html" and "# Herons" in whole["markdown"]
    narrowed = api.crawl(
        site.url("/article"),
        markdown=True,
        include_tags=["article"],
        exclude_tags=["h1"],
        wait_for_js=False,
    ).json()
    assert ARTICLE_BODY[0] in narrowed["text"] and AD_TEXT not in narrowed["text"]
    assert "Herons return" not in narrowed["markdown"]


def test_blocked_images_are_never_requested(api: CrawlApi, site: Site) -> None:
    before = len(site.requested)
    assert api.crawl(site.url("/with-image"), block_resources=["image", "font"]).status_code == 200
    assert "/pixel.png" not in site.requested[before:]
    before = len(site.requested)
    assert api.crawl(site.url("/with-image")).status_code == 200
    assert "/pixel.png" in site.requested[before:]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"headers": {"Host": "evil.test"}}, "headers"),
        ({"headers": {"Proxy-Authorization": "x"}}, "headers"),
        ({"headers": {"bad header": "x"}}, "headers"),
        ({"cookies": {"a": "b;c"}}, "cookies"),
        ({"wait_for_selector": "div[["}, "selector"),
        ({"include_tags": ["<p>"]}, "selector"),
        ({"screenshot": True, "block_resources": ["image"]}, "block_resources"),
        ({"block_resources": ["script"]}, "block_resources.0"),
        ({"wait_ms": -1}, "wait_ms"),
    ],
)
def test_bad_options_are_400(
    api: CrawlApi, site: Site, fields: dict[str, object], field: str
) -> None:
    response = api.crawl(site.url("/article"), **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert field in [e["field"] for e in error["details"]["errors"]], error
