"""Load one page in a browser context and read it: title, URL, HTML and text in one snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Response
from playwright.async_api import TimeoutError as PlaywrightTimeout

from frontend.crawl.settle import install, settle

# Everything is read in one evaluate, so a meta refresh or script navigation between reads
# cannot mix two documents.
_SNAPSHOT_JS = """({maxHtml, maxText, maxLinks, clean}) => {
  const root = document.documentElement;
  // The HTML that text and markdown come from when the request narrows the page: scripts and
  // styles dropped, excluded selectors (and boilerplate for main content) removed, or just
  // the included selectors.
  const cleaned = (() => {
    if (!clean || !root) return null;
    const copy = root.cloneNode(true);
    const drop = (selector) => copy.querySelectorAll(selector).forEach((n) => n.remove());
    drop("script, style, noscript, template, link, meta, head");
    for (const selector of clean.exclude) drop(selector);
    if (clean.onlyMain) {
      drop("header, nav, footer, aside, [role=navigation], [role=banner], [role=contentinfo]");
      drop("[aria-hidden=true], .sidebar, #sidebar, .comments, #comments, .ad, .ads, .advert");
    }
    if (clean.include.length) {
      const parts = [];
      for (const selector of clean.include) {
        for (const node of copy.querySelectorAll(selector)) parts.push(node.outerHTML);
      }
      return parts.join("\\n");
    }
    const body = copy.querySelector("body");
    return body ? body.innerHTML : copy.innerHTML;
  })();
  const html = root ? root.outerHTML : "";
  const text = document.body ? document.body.innerText : (root ? root.innerText : "");
  const meta = (selector) => {
    const node = document.querySelector(selector);
    const value = node && node.getAttribute("content");
    return value ? value.trim().slice(0, 2000) : null;
  };
  const links = [];
  const seen = new Set();
  for (const anchor of document.querySelectorAll("a[href]")) {
    if (links.length >= maxLinks) break;
    const href = anchor.href;
    if (!/^https?:/i.test(href) || seen.has(href)) continue;
    seen.add(href);
    const label = (anchor.innerText || anchor.textContent || "").replace(/\\s+/g, " ").trim();
    links.push({url: href.slice(0, 4096), text: label.slice(0, 500)});
  }
  return {
    url: location.href,
    title: (document.title || "").slice(0, 2000),
    html: html.slice(0, maxHtml),
    html_truncated: html.length > maxHtml || (cleaned !== null && cleaned.length > maxHtml),
    cleaned_html: cleaned === null ? null : cleaned.slice(0, maxHtml),
    text: text.slice(0, maxText),
    text_truncated: text.length > maxText,
    language: (root && root.getAttribute("lang")) || meta('meta[http-equiv="content-language" i]'),
    description: meta('meta[name="description" i]') || meta('meta[property="og:description"]'),
    links,
  };
}"""

# The selectors a request names that the browser cannot parse.
_BAD_SELECTORS_JS = """(selectors) => selectors.filter((s) => {
  try { document.createDocumentFragment().querySelector(s); return false; }
  catch (e) { return true; }
})"""

_READ_ATTEMPTS = 4
# Requests that can bring a page's text; images, fonts, media and styles cannot (an image's
# onload that changes the DOM is seen as a DOM change).
_TEXT_REQUESTS = frozenset({"document", "script", "xhr", "fetch"})
_REQUEST_PATIENCE_S = 3.0
_POLL_S = 0.02
_SCREENSHOT_MIN_MS = 5000.0


class NavigationFailed(Exception):
    """The page could not be loaded: `net_error` is Chromium's error name, `url` the request."""

    def __init__(self, net_error: str, url: str) -> None:
        super().__init__(net_error)
        self.net_error = net_error
        self.url = url


class NothingLoaded(Exception):
    """The timeout passed before the page sent a response."""


@dataclass
class Navigation:
    """Main-frame documents in load order (redirect hops included) and failed ones, and the
    page's requests that can bring text (documents, scripts, fetch/XHR) still in flight."""

    responses: list[Response] = field(default_factory=list)
    failed: list[Request] = field(default_factory=list)
    in_flight: dict[Request, float] = field(default_factory=dict)  # request: when it started
    last_activity: float = field(default_factory=time.monotonic)

    def busy_for(self, quiet: float) -> float:
        """Seconds until the network can be quiet for `quiet` seconds (<= 0: it is): no such
        request in flight and none started or ended meanwhile. A request in flight longer
        than _REQUEST_PATIENCE_S (a long poll, a stalled script) no longer holds the wait."""
        now = time.monotonic()
        busy = self.last_activity + quiet - now
        if any(now - started < _REQUEST_PATIENCE_S for started in self.in_flight.values()):
            busy = max(busy, _POLL_S)
        return busy

    def _started(self, request: Request) -> None:
        if request.resource_type in _TEXT_REQUESTS:
            self.in_flight[request] = self.last_activity = time.monotonic()

    def _ended(self, request: Request) -> None:
        if self.in_flight.pop(request, None) is not None:
            self.last_activity = time.monotonic()


@dataclass
class LoadedPage:
    snapshot: dict[str, Any]
    navigation: Navigation
    partial: bool
    screenshot: bytes | None = None
    pdf: bytes | None = None


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left_ms(self, reserve_ms: float = 0) -> float:
        return max(1.0, (self.end - time.monotonic()) * 1000 - reserve_ms)


def _watch(page: Page) -> Navigation:
    navigation = Navigation()

    def on_response(response: Response) -> None:
        request = response.request
        with contextlib.suppress(PlaywrightError):
            if request.is_navigation_request() and request.frame == page.main_frame:
                navigation.responses.append(response)

    def on_failed(request: Request) -> None:
        with contextlib.suppress(PlaywrightError):
            if request.is_navigation_request() and request.frame == page.main_frame:
                navigation.failed.append(request)

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("request", navigation._started)
    page.on("requestfinished", navigation._ended)
    page.on("requestfailed", navigation._ended)
    return navigation


def browser_gone(page: Page) -> bool:
    """Whether the page's browser is gone: its errors then say nothing about the site."""
    browser = page.context.browser
    return page.is_closed() or (browser is not None and not browser.is_connected())


def _net_error(exc: PlaywrightError) -> str:
    message = exc.message or ""
    start = message.find("net::")
    if start < 0:
        return "ERR_FAILED"
    return message[start + 5 :].split()[0]


async def bad_selectors(page: Page, selectors: list[str]) -> list[str]:
    """Those of `selectors` that are not valid CSS (checked on the blank page, before loading)."""
    if not selectors:
        return []
    bad: list[str] = await page.evaluate(_BAD_SELECTORS_JS, selectors)
    return bad


async def wait_more(
    page: Page, deadline: Deadline, selector: str | None, wait_ms: int | None
) -> bool:
    """The request's own waits after the load; False when the selector never appeared."""
    reserve = min(2000.0, deadline.left_ms() / 4)
    found = True
    if selector:
        try:
            await page.wait_for_selector(
                selector, state="attached", timeout=deadline.left_ms(reserve)
            )
        except PlaywrightTimeout:
            found = False
        except PlaywrightError:
            if browser_gone(page):
                raise
            found = False  # a navigation replaced the document meanwhile
    if wait_ms:
        await asyncio.sleep(min(wait_ms, deadline.left_ms(reserve)) / 1000)
    return found


async def pdf(page: Page) -> bytes:
    """The page printed to PDF (A4, backgrounds), as headless Chromium prints it."""
    return await page.pdf(format="A4", print_background=True)


async def load(
    page: Page, url: str, deadline: Deadline, wait_for_js: bool, js_wait_ms: int
) -> tuple[Navigation, bool]:
    """Navigate; returns (navigation, partial). Partial: the page had not finished loading
    when the time was up, and what rendered so far is read."""
    navigation = _watch(page)
    reserve = min(2000.0, deadline.left_ms() / 4)  # kept for reading and the screenshot
    if wait_for_js:
        await install(page)
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=deadline.left_ms(reserve))
    except PlaywrightTimeout:
        if not navigation.responses:
            raise NothingLoaded from None
        return navigation, True
    except PlaywrightError as exc:
        if browser_gone(page):
            raise  # the browser died (killed, crashed), not the page: not the site's fault
        failed = navigation.failed[-1].url if navigation.failed else url
        raise NavigationFailed(_net_error(exc), failed) from None
    try:
        await page.wait_for_load_state("load", timeout=deadline.left_ms(reserve))
    except PlaywrightTimeout:
        return navigation, True
    if wait_for_js:
        budget = min(float(js_wait_ms), deadline.left_ms(reserve))
        await settle(page, navigation, time.monotonic() + budget / 1000)
    return navigation, False


async def read(page: Page, deadline: Deadline, limits: dict[str, Any]) -> dict[str, Any]:
    """The snapshot; retried when a navigation (meta refresh, script) destroys the document."""
    for attempt in range(_READ_ATTEMPTS):
        try:
            result: dict[str, Any] = await page.evaluate(_SNAPSHOT_JS, limits)
            return result
        except PlaywrightError:
            if attempt == _READ_ATTEMPTS - 1:
                raise
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state(
                    "domcontentloaded", timeout=min(2000.0, deadline.left_ms())
                )
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def screenshot(page: Page, full_page: bool, max_height: int, deadline: Deadline) -> bytes:
    """A PNG of the viewport, or of the whole page up to `max_height` pixels."""
    # Past the page's own timeout if need be (the crawl's hard stop still bounds it): a page
    # that used up its time loading is still worth its screenshot.
    timeout = max(deadline.left_ms(), _SCREENSHOT_MIN_MS)
    if not full_page:
        return await page.screenshot(type="png", timeout=timeout)
    size: dict[str, int] = await page.evaluate(
        "() => ({width: document.documentElement.scrollWidth,"
        " height: document.documentElement.scrollHeight})"
    )
    viewport = page.viewport_size or {"width": 1280, "height": 800}
    width = viewport["width"]
    height = max(viewport["height"], min(int(size["height"]), max_height))
    clip = {"x": 0, "y": 0, "width": width, "height": height}
    return await page.screenshot(
        type="png",
        full_page=True,
        clip=clip,  # type: ignore[arg-type]
        timeout=timeout,
    )
