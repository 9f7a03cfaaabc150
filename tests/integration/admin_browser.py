"""Driving the admin page in a real Chromium: one browser per module, console errors collected,
screenshots at desktop and phone widths."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from frontend.crawl.browser import chromium_executable

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
REPO_ROOT = Path(__file__).resolve().parents[2]


def screenshot_dir() -> Path:
    """$HOMELAB_SCREENSHOT_DIR, else test-output/admin-screenshots in the checkout."""
    configured = os.environ.get("HOMELAB_SCREENSHOT_DIR")
    path = Path(configured) if configured else REPO_ROOT / "test-output" / "admin-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch() -> Iterator[Browser]:
    executable = chromium_executable(None)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable) if executable else None,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class AdminPage:
    """A page of the admin UI and everything the browser reported as an error on it."""

    page: Page
    base_url: str
    shots: Path
    errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    # console errors a test expects (e.g. the browser's note of a 401), matched by substring
    expected: list[str] = field(default_factory=list)

    def open(self, tab: str | None = None) -> None:
        self.page.goto(f"{self.base_url}/")  # / redirects to /admin
        if tab:
            self.tab(tab)

    def tab(self, name: str) -> None:
        self.page.click(f"#tab-{name}")
        self.page.wait_for_selector(f"#panel-{name}", state="visible")

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def wait_text(self, selector: str, wanted: Callable[[str], bool], timeout: float = 60) -> str:
        """Polls `selector`'s text until `wanted` accepts it."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            locator = self.page.locator(selector)
            seen = locator.inner_text() if locator.count() else ""
            if wanted(seen):
                return seen
            self.page.wait_for_timeout(50)
        raise AssertionError(f"{selector} still shows {seen!r} after {timeout} s")

    def snap(self, name: str) -> list[Path]:
        """Full-page PNGs at desktop and phone width; the phone one must not scroll sideways."""
        paths = []
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.wait_for_timeout(150)
            width = self.page.evaluate("document.documentElement.scrollWidth")
            assert width <= size["width"], f"{name} at {label} width is {width} px wide"
            path = self.shots / f"{name}-{label}.png"
            self.page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        self.page.set_viewport_size(DESKTOP)
        return paths

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


def new_admin_page(browser: Browser, base_url: str, shots: Path) -> AdminPage:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    admin = AdminPage(page, base_url, shots)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            admin.errors.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: admin.errors.append(f"page error: {error}"))
    page.on("request", lambda request: admin.requested.append(request.url))
    page.set_default_timeout(60_000)
    return admin
