"""Crawl contexts made ahead: a few fresh browser contexts, each with its own started proxy
listener and a blank page (the page's renderer process already running), so a crawl takes
one ready-made instead of waiting for Chromium to make it. A prepared context serves exactly
one crawl and is closed after it, like any other: isolation is the same as without the pool.

Only crawls with the default context options can take one (not `mobile`, no `user_agent`);
`headers` are set on the taken context. Refilling starts when a crawl takes one, so an idle
service keeps no browser alive for the pool (an idle close drops the pooled contexts with
the browser; the next crawl then makes its context itself)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from frontend.core.config import CrawlSection
from frontend.core.config_sections import CHROME_VERSION, DEFAULT_USER_AGENT
from frontend.crawl.browser import BrowserManager, BrowserUnavailable, Prepared
from frontend.crawl.proxy import ProxySession

logger = logging.getLogger(__name__)

_PREPARE_TIMEOUT = 30.0
BYPASS_NOTHING = "<-loopback>"  # Chromium must send loopback traffic through the proxy too
_MOBILE_VIEWPORT = {"width": 390, "height": 844}
_MOBILE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{version} Mobile Safari/537.36"
)


def context_options(
    settings: CrawlSection,
    session: ProxySession,
    mobile: bool = False,
    user_agent: str | None = None,
) -> dict[str, object]:
    """A crawl context's options: its own proxy listener, the viewport and User-Agent."""
    options: dict[str, object] = {
        "proxy": {"server": session.url, "bypass": BYPASS_NOTHING},
        "viewport": {"width": settings.viewport_width, "height": settings.viewport_height},
        "ignore_https_errors": settings.ignore_tls_errors,
        "accept_downloads": False,
        "service_workers": "block",
    }
    if mobile:
        options.update(viewport=_MOBILE_VIEWPORT, is_mobile=True, has_touch=True)
        options["device_scale_factor"] = 2
    if user_agent is None:
        user_agent = settings.user_agent
        if mobile and user_agent == DEFAULT_USER_AGENT:
            user_agent = _MOBILE_USER_AGENT.format(version=CHROME_VERSION)
    if user_agent:
        options["user_agent"] = user_agent
    return options


@dataclass
class Warm:
    session: ProxySession
    prepared: Prepared


class WarmContexts:
    """Up to `size` prepared contexts; `take()` hands one out and starts refilling."""

    def __init__(
        self,
        size: int,
        browser: BrowserManager,
        new_session: Callable[[], ProxySession],
        options: Callable[[ProxySession], dict[str, object]],
    ) -> None:
        self.size = size
        self.browser = browser
        self._new_session = new_session
        self._options = options
        self._ready: deque[Warm] = deque()
        self._filling: asyncio.Task[None] | None = None
        self._dropping: set[asyncio.Task[None]] = set()
        self.made = 0
        self.taken = 0

    def contexts(self) -> list[BrowserContext]:
        """The contexts waiting in the pool (no crawl has used them)."""
        return [warm.prepared.context for warm in self._ready]

    def take(self) -> Warm | None:
        """A prepared context of the current browser, or None; the pool refills meanwhile."""
        warm: Warm | None = None
        while self._ready and warm is None:
            candidate = self._ready.popleft()
            if candidate.prepared.usable and candidate.prepared.instance is self.browser.current:
                warm = candidate
            else:  # made in a browser since closed or replaced
                self._drop_later(candidate)
        if self.size and (self._filling is None or self._filling.done()):
            self._filling = asyncio.create_task(self._fill())
        if warm is not None:
            self.taken += 1
        return warm

    async def close(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filling
        while self._ready:
            await self._drop(self._ready.popleft())

    async def _fill(self) -> None:
        while len(self._ready) < self.size:
            session = self._new_session()
            try:
                await session.start()
                async with asyncio.timeout(_PREPARE_TIMEOUT):
                    prepared = await self.browser.prepare(**self._options(session))
            except (PlaywrightError, TimeoutError, BrowserUnavailable, OSError):
                # The crawls make their own contexts meanwhile (and report the failure).
                logger.debug("could not prepare a crawl context", exc_info=True)
                await session.close()
                return
            except asyncio.CancelledError:
                await session.close()
                raise
            self.made += 1
            self._ready.append(Warm(session, prepared))

    def _drop_later(self, warm: Warm) -> None:
        task = asyncio.create_task(self._drop(warm))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def _drop(self, warm: Warm) -> None:
        await self.browser.discard(warm.prepared)
        await warm.session.close()
