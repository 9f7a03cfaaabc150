"""One shared Chromium: launched on first use, closed when idle, replaced on crash or hang."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from frontend.core.config import CrawlSection

logger = logging.getLogger(__name__)
# What a call into a browser that has gone raises: Playwright's error or, when its driver's pipe
# was closed meanwhile (the dead browser being replaced by another crawl), the event loop's
# RuntimeError for a closed transport.
BROWSER_GONE = (PlaywrightError, RuntimeError)
_GONE_OR_SLOW = (PlaywrightError, RuntimeError, TimeoutError)

DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")  # /usr/bin/chromium is a shell wrapper
# Playwright's own --disable-features list (1.65): Chromium keeps only the last
# --disable-features switch, so ours repeats it.
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
)
# Headless Chromium opens every new page in a browser window with its omnibox popup, two
# WebUI pages in renderers of their own, and starts a spare renderer next to the page's:
# three extra renderer processes per crawl, about half of Chromium's CPU time per page
# (tools/bench_crawl). A crawl only needs the page's own renderer.
CRAWL_DISABLED_FEATURES = (
    "WebUIOmniboxPopup",
    "WebUIOmniboxFullPopup",
    "WebUIOmniboxAimPopup",
    "PreloadTopChromeWebUI",
    "SpareRendererForSitePerProcess",
)
# Without these Chromium keeps calling Google services (updates, sync, field trials).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--mute-audio",
    # WebRTC must not send UDP around the filtering proxy.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-features=" + ",".join((*PLAYWRIGHT_DISABLED_FEATURES, *CRAWL_DISABLED_FEATURES)),
)
_MARKER = "--homelab-crawl-browser="
_CLOSE_TIMEOUT = 5.0
_PROBE_TIMEOUT = 5.0


class BrowserUnavailable(Exception):
    """Chromium could not be started (missing binary, launch failure)."""


def chromium_executable(configured: Path | None) -> Path | None:
    """The configured binary, else Debian's chromium when installed, else Playwright's own."""
    if configured is not None:
        return configured
    return DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.exists() else None


def process_group(pgid: int) -> list[int]:
    """Live processes of a process group (Playwright starts Chromium as a group leader)."""
    pids = []
    for process in psutil.process_iter(["status"]):
        if process.info["status"] in (None, psutil.STATUS_ZOMBIE):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile
            if os.getpgid(process.pid) == pgid:
                pids.append(process.pid)
    return pids


def _find_browser_pid(marker: str) -> int | None:
    for process in psutil.process_iter(["cmdline"]):
        if marker in (process.info["cmdline"] or ()):
            return int(process.pid)
    return None


class _Instance:
    """A launched browser with its Playwright driver and Chromium process group."""

    def __init__(self, playwright: Playwright, browser: Browser, pid: int | None) -> None:
        self.playwright = playwright
        self.browser = browser
        self.pid = pid
        self.broken = False

    async def close(self, graceful: bool) -> None:
        if graceful and not self.broken:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(self.browser.close(), _CLOSE_TIMEOUT)
        self.kill()
        with contextlib.suppress(PlaywrightError, TimeoutError, OSError):
            await asyncio.wait_for(self.playwright.stop(), _CLOSE_TIMEOUT)
        self.kill()  # anything the driver left behind

    def kill(self) -> None:
        if self.pid:  # a group already gone raises ProcessLookupError, which is fine
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


async def _close_quietly(context: BrowserContext) -> None:
    with contextlib.suppress(*_GONE_OR_SLOW):
        await asyncio.wait_for(context.close(), _CLOSE_TIMEOUT)


async def _new_context(instance: _Instance, options: dict[str, Any]) -> BrowserContext:
    """A new context; when the caller is cancelled meanwhile, the context the browser still
    makes is closed once it exists, rather than left open in the browser for good."""
    task = asyncio.ensure_future(instance.browser.new_context(**options))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_when_made)
        raise


def _close_when_made(task: asyncio.Future[BrowserContext]) -> None:
    if not task.cancelled() and task.exception() is None:
        closing = asyncio.ensure_future(_close_quietly(task.result()))
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Future[None]] = set()  # context closes in flight (not cancellable)


async def _answers(prepared: Prepared) -> bool:
    """Whether a prepared page still answers: its browser may have died since (a crash that
    Playwright has not reported yet), and then the crawl needs a new browser."""
    if not prepared.usable:
        return False
    try:
        await asyncio.wait_for(prepared.context.cookies(), _PROBE_TIMEOUT)
    except _GONE_OR_SLOW:
        return False
    return True


@dataclass
class Prepared:
    """A context made ahead of its crawl (never used by any crawl) with its blank first page."""

    instance: _Instance
    context: BrowserContext
    page: Page

    @property
    def usable(self) -> bool:
        return (
            not self.instance.broken
            and self.instance.browser.is_connected()
            and not self.page.is_closed()
        )


class BrowserManager:
    """Owns the shared browser. `context()` hands out an isolated context per crawl."""

    def __init__(self, settings: CrawlSection) -> None:
        self.settings = settings
        # The browser-wide proxy (set by CrawlService before the first launch).
        self.launch_proxy: dict[str, str] | None = None
        self._instance: _Instance | None = None
        self._lock = asyncio.Lock()
        self._active = 0
        self._last_used = time.monotonic()
        self._watcher: asyncio.Task[None] | None = None
        self.launches = 0

    @property
    def running(self) -> bool:
        return self._instance is not None and self._instance.browser.is_connected()

    @property
    def pid(self) -> int | None:
        """The current Chromium's main process (its process group id)."""
        return self._instance.pid if self._instance else None

    @property
    def current(self) -> _Instance | None:
        return self._instance

    @property
    def browser(self) -> Browser | None:
        return self._instance.browser if self._instance else None

    async def start(self) -> None:
        """Starts the idle watcher; the browser itself launches on the first crawl."""
        self._watcher = asyncio.create_task(self._close_when_idle())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        async with self._lock:
            await self._drop(graceful=True)

    async def prepare(self, **options: Any) -> Prepared:
        """A fresh context with a blank page, made ahead for a later `context(prepared)`."""
        instance = await self._ensure()
        context = await _new_context(instance, options)
        try:
            page = await context.new_page()
        except BaseException:
            await _close_quietly(context)
            raise
        return Prepared(instance, context, page)

    async def discard(self, prepared: Prepared) -> None:
        """Closes a prepared context no crawl will use."""
        await _close_quietly(prepared.context)

    @contextlib.asynccontextmanager
    async def context(
        self, prepared: Prepared | None = None, **options: Any
    ) -> AsyncIterator[BrowserContext]:
        """A fresh browser context, closed afterwards: `prepared` when it is still usable in
        the current browser, else a new one with `options`. A browser that cannot close it,
        or that stops answering while a crawl times out, is killed and replaced for the next
        crawl."""
        self._active += 1
        instance: _Instance | None = None
        context: BrowserContext | None = None
        try:
            instance = await self._ensure()
            if prepared is not None and not (
                prepared.instance is instance and await _answers(prepared)
            ):
                await self.discard(prepared)
                prepared = None
            if prepared is not None:
                context = prepared.context
            else:
                try:
                    context = await _new_context(instance, options)
                except BROWSER_GONE:
                    # It died since the last crawl (a crash not yet noticed): replace it once.
                    await self._replace(instance)
                    instance = await self._ensure()
                    context = await _new_context(instance, options)
            yield context
        except (TimeoutError, asyncio.CancelledError):
            if instance is not None and not await self._responsive(instance):
                instance.broken = True
            raise
        finally:
            self._active -= 1
            self._last_used = time.monotonic()
            # In a task of its own, awaited through a shield: a crawl cancelled by its client (a
            # closed stream) may be cancelled again at each await, which must not leave the
            # context open in the browser for good.
            cleanup = asyncio.ensure_future(self._after_context(instance, context, prepared))
            _CLOSING.add(cleanup)
            cleanup.add_done_callback(_CLOSING.discard)
            await asyncio.shield(cleanup)

    async def _after_context(
        self,
        instance: _Instance | None,
        context: BrowserContext | None,
        prepared: Prepared | None,
    ) -> None:
        if context is None and prepared is not None:  # cancelled while checking it
            await self.discard(prepared)
        if context is not None and instance is not None and not instance.broken:
            try:
                await asyncio.wait_for(context.close(), _CLOSE_TIMEOUT)
            except _GONE_OR_SLOW:
                instance.broken = not await self._responsive(instance)
        if instance is not None and (instance.broken or not instance.browser.is_connected()):
            await self._replace(instance)

    async def _responsive(self, instance: _Instance) -> bool:
        if not instance.browser.is_connected():
            return False
        try:
            probe = await asyncio.wait_for(instance.browser.new_context(), _PROBE_TIMEOUT)
            await asyncio.wait_for(probe.close(), _PROBE_TIMEOUT)
            return True
        except _GONE_OR_SLOW:
            logger.warning("the crawl browser stopped answering; it will be replaced")
            return False

    async def _replace(self, instance: _Instance) -> None:
        async with self._lock:
            if self._instance is instance:
                await self._drop(graceful=False)

    async def _ensure(self) -> _Instance:
        async with self._lock:
            if self._instance is not None and self._instance.browser.is_connected():
                return self._instance
            await self._drop(graceful=False)
            self._instance = await self._launch()
            return self._instance

    async def _launch(self) -> _Instance:
        marker = f"{_MARKER}{uuid.uuid4().hex}"
        executable = chromium_executable(self.settings.chromium_path)
        playwright = await async_playwright().start()
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable,
                args=[*CHROMIUM_FLAGS, marker],
                proxy=self.launch_proxy,  # type: ignore[arg-type]
                timeout=self.settings.launch_timeout_seconds * 1000,
            )
        except PlaywrightError as exc:
            with contextlib.suppress(PlaywrightError, OSError):
                await playwright.stop()
            logger.error("cannot start Chromium (%s): %s", executable or "bundled", exc)
            raise BrowserUnavailable(str(executable or "Playwright's Chromium")) from None
        pid = _find_browser_pid(marker)
        self.launches += 1
        logger.info("crawl browser started (pid %s, %s)", pid, executable or "bundled")
        return _Instance(playwright, browser, pid)

    async def _drop(self, graceful: bool) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            await instance.close(graceful)
            logger.info("crawl browser closed (pid %s)", instance.pid)

    async def _close_when_idle(self) -> None:
        idle = self.settings.idle_close_seconds
        while True:
            await asyncio.sleep(max(0.2, min(idle / 4, 5.0)))
            if self._instance is None or self._active:
                continue
            if time.monotonic() - self._last_used >= idle:
                async with self._lock:
                    if self._active == 0 and time.monotonic() - self._last_used >= idle:
                        await self._drop(graceful=True)
