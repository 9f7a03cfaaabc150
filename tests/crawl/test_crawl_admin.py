"""The admin page's Crawls panel in a real Chromium: start a site crawl, watch it finish, open
a page; page titles that are markup stay text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.crawl.conftest import CrawlApi
from tests.crawl.tree import MARKUP_TITLE, Tree
from tests.integration.admin_browser import AdminPage, launch, new_admin_page, screenshot_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def admin(browser: Browser, api: CrawlApi) -> Iterator[AdminPage]:
    page = new_admin_page(browser, api.url, screenshot_dir())
    yield page
    page.page.context.close()
    assert page.unexpected_errors() == []


def test_crawls_panel_starts_a_crawl_and_opens_its_pages(admin: AdminPage, tree: Tree) -> None:
    admin.open("crawls")
    admin.page.fill("#sitecrawl-url", tree.url("/markup"))
    admin.page.fill("#sitecrawl-max-pages", "3")
    admin.page.fill("#sitecrawl-depth", "1")
    admin.page.fill("#sitecrawl-exclude", "^/nothing/")
    admin.page.click("#sitecrawl-form button[type=submit]")
    progress = admin.wait_text("#sitecrawl-progress", lambda text: text.startswith("succeeded"))
    assert "3 loaded" in progress and "0 failed" in progress
    rows = admin.page.locator("#sitecrawl-pages tbody tr")
    assert rows.count() == 3
    urls = {rows.nth(i).get_attribute("data-url") for i in range(3)}
    assert urls == {tree.url("/markup"), tree.url("/s/0"), tree.url("/s/1")}
    first = admin.page.locator(f"#sitecrawl-pages tr[data-url='{tree.url('/markup')}']")
    assert first.locator("td:nth-child(4)").inner_text() == MARKUP_TITLE  # as text
    assert admin.page.locator("#sitecrawl-pages img").count() == 0
    assert admin.page.evaluate("window.__xss") is None
    admin.page.click(f"#sitecrawl-pages tr[data-url='{tree.url('/s/0')}'] button")
    assert "Section 0" in admin.wait_text("#sitecrawl-page", bool)
    assert admin.text("#sitecrawl-page-title").endswith(tree.url("/s/0"))
    assert admin.page.locator("#sitecrawl-cancel").is_hidden()
    assert admin.text("#sitecrawl-title").startswith("Crawl ")
    admin.snap("crawls")
    # The Jobs tab lists the crawl; its Pages button opens it here again.
    job_id = admin.text("#sitecrawl-message").removeprefix("Started job ")
    admin.tab("jobs")
    admin.page.click(f"#jobs-table tr[data-job='{job_id}'] button:has-text('Pages')")
    admin.page.wait_for_selector("#panel-crawls", state="visible")
    # The opened page's text goes when the view is rebuilt; then its pages load again.
    admin.page.wait_for_selector("#sitecrawl-page-card", state="hidden")
    # (no wait_for_function: the admin page's CSP forbids the eval it polls with)
    expect(admin.page.locator("#sitecrawl-pages tbody tr")).to_have_count(3)
    assert admin.text("#sitecrawl-progress").startswith("succeeded")
