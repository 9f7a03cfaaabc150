"""wait_for_js waits for what a page's scripts are still doing, and the whole page comes back:
figure captions and alt text, and a 2 MB article under the default size ceilings (real
Chromium, loopback pages)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from frontend.core.config_sections import CrawlSection
from tests.crawl.conftest import CRAWL, CrawlApi, FakeDns, start_api
from tests.crawl.site import Site
from tests.crawl.whole_pages import (
    AFTER_LOAD_TEXT,
    ALT_TEXTS,
    BODY,
    CAPTIONS,
    FETCHED_TEXT,
    LONG_SECTIONS,
    MEANINGLESS_ALTS,
    NAV_LOGO_ALT,
    TIMER_RESULTS,
)


@pytest.fixture(scope="module")
def default_limits(fake_dns: FakeDns) -> Iterator[CrawlApi]:
    """The tests' crawl settings but the default page size ceilings."""
    crawl = {k: v for k, v in CRAWL.items() if k not in ("max_html_chars", "max_text_chars")}
    running = start_api(crawl, fake_dns)
    yield running
    running.stop()


def test_text_a_timer_inserts_after_load_is_waited_for(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/after-load")).json()  # wait_for_js is the default
    assert AFTER_LOAD_TEXT in body["text"], body["text"]
    assert "The static part of the page." in body["text"]
    hurried = api.crawl(site.url("/after-load"), wait_for_js=False).json()
    assert AFTER_LOAD_TEXT not in hurried["text"]


def test_text_a_slow_fetch_brings_is_waited_for(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/fetched"), wait_for_js=True).json()
    assert FETCHED_TEXT in body["text"], body["text"]


def test_page_timers_behave_as_without_the_wait(api: CrawlApi, site: Site) -> None:
    # arguments, clearTimeout, setInterval and requestAnimationFrame through the tracker
    body = api.crawl(site.url("/timers"), wait_for_js=True).json()
    for result in TIMER_RESULTS:
        assert result in body["text"], body["text"]
    assert "BAD" not in body["text"] and "RAN" not in body["text"]


def test_figure_captions_and_meaningful_alt_text_are_kept(api: CrawlApi, site: Site) -> None:
    body = api.crawl(site.url("/figures"), markdown=True).json()
    assert body["text_source"] == "article"
    for output in (body["text"], body["markdown"]):
        for sentence in BODY + CAPTIONS + ALT_TEXTS:
            assert sentence in output, sentence
        for left_out in [*MEANINGLESS_ALTS, NAV_LOGO_ALT, "Footer award badge", "Decorative"]:
            assert left_out not in output, left_out
        assert "Sections" not in output and "Copyright" not in output


def test_a_2_mb_page_comes_back_whole(default_limits: CrawlApi, site: Site) -> None:
    response = default_limits.crawl(site.url("/long"), markdown=True)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["truncated"] is False
    assert len(response.content) > 2_000_000  # text and markdown of a 2 MB page
    for output in (body["text"], body["markdown"]):
        assert "Section 0, paragraph 0:" in output
        assert f"Section {LONG_SECTIONS // 2}, paragraph 3:" in output
        assert f"Section {LONG_SECTIONS - 1}, paragraph 6:" in output
        assert output.rstrip().endswith("The very last sentence of the long record.")
        assert "Back issues" not in output and "Footer of the long page." not in output


def test_page_size_ceilings_exist_by_default() -> None:
    # against absurd pages (test_huge_page_output_is_bounded cuts one at configured ceilings)
    defaults = CrawlSection()
    assert 2_000_000 < defaults.max_html_chars <= 50_000_000
    assert 2_000_000 < defaults.max_text_chars <= 50_000_000
