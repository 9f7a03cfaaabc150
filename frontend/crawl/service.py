"""Crawling: admission (concurrency limit and queue), the address policy, one isolated
browser context and proxy listener per crawl with the request's page options, and its result
(failures become API errors in crawl.failures)."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from playwright.async_api import TimeoutError as PlaywrightTimeout

from frontend.core.config import CrawlSection
from frontend.core.errors import APIError, InvalidRequest, ResourceExhausted, Unavailable
from frontend.crawl import page as pages
from frontend.crawl.browser import BROWSER_GONE, BrowserManager, BrowserUnavailable
from frontend.crawl.extract import extract, extract_cleaned
from frontend.crawl.failures import classify_net_error, host_port, net_failure, refused
from frontend.crawl.policy import CrawlPolicy, Resolver, TargetRefused, system_resolver
from frontend.crawl.proxy import MARKER_HEADER, ProxySession
from frontend.crawl.schemas import CrawlRequest, PageOptions
from frontend.crawl.slots import Slots
from frontend.crawl.warm import BYPASS_NOTHING, Warm, WarmContexts, context_options

logger = logging.getLogger(__name__)

# Beyond the page's own timeout: time for reading, then the hard stop for a hung browser.
_HANG_GRACE_SECONDS = 10.0
_CONNECT_TIMEOUT = 10.0
_DNS_TIMEOUT = 10.0


class CrawlService:
    def __init__(self, settings: CrawlSection, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.resolver = resolver
        self.policy = CrawlPolicy(settings.allow_private_networks, settings.allowed_hosts)
        # Browser-wide default proxy: traffic outside a crawl's own context is filtered too.
        self._default_proxy = ProxySession(self.policy, resolver, 1 << 62, _CONNECT_TIMEOUT)
        self.browser = BrowserManager(settings)
        self.warm = WarmContexts(
            settings.warm_contexts,
            self.browser,
            self._new_session,
            lambda session: context_options(settings, session),
        )
        self.slots = Slots(settings.max_concurrent)
        self._admitted = 0  # foreground crawls running or waiting

    async def start(self) -> None:
        await self._default_proxy.start()
        self.browser.launch_proxy = {"server": self._default_proxy.url, "bypass": BYPASS_NOTHING}
        await self.browser.start()

    async def stop(self) -> None:
        await self.warm.close()
        await self.browser.stop()
        await self._default_proxy.close()

    def timeout_ms(self, requested: int | None) -> int:
        if requested is None:
            return self.settings.default_timeout_ms
        if requested > self.settings.max_timeout_ms:
            raise InvalidRequest(
                f"timeout_ms must be at most {self.settings.max_timeout_ms} (crawl.max_timeout_ms)",
            )
        return requested

    async def check_target(self, url: str) -> str:
        """Refuse a bad scheme or a refused address before any browser work; the URL as the
        browser reads it (crawl that: it is the one whose host was checked)."""
        try:
            target = self.policy.parse(url)
        except TargetRefused as exc:
            raise refused(exc.refusal) from None
        host, port = target.host, target.effective_port
        try:
            await asyncio.wait_for(self.policy.resolve(host, port, self.resolver), _DNS_TIMEOUT)
        except TargetRefused as exc:
            raise refused(exc.refusal) from None
        except (OSError, TimeoutError, ValueError):
            raise net_failure("dns", host) from None
        return target.href

    async def check_selectors(self, selectors: list[str]) -> None:
        """Refuse (400) the CSS selectors Chromium cannot parse before a crawl of many pages
        starts, with the parser that applies them (querySelectorAll) on a blank page."""
        if not selectors:
            return
        try:
            async with self.browser.context(
                None, **context_options(self.settings, self._default_proxy)
            ) as context:
                bad = await pages.bad_selectors(await context.new_page(), selectors)
        except BrowserUnavailable:
            raise Unavailable("the crawl browser could not be started") from None
        except BROWSER_GONE:
            raise Unavailable("the crawl browser failed; retry") from None
        if bad:
            raise bad_selector_error(bad)

    def check_options(self, options: PageOptions) -> None:
        """What the schema cannot see: limits from the config and option combinations."""
        self.timeout_ms(options.timeout_ms)
        if options.block_resources and (options.screenshot or options.pdf):
            raise InvalidRequest(
                "block_resources cannot be combined with screenshot or pdf",
                {"errors": [{"field": "block_resources", "message": "not with screenshot/pdf"}]},
            )

    async def crawl(self, request: CrawlRequest, background: bool = False) -> dict[str, Any]:
        """One page. Foreground crawls (a caller waiting for this page) beyond
        max_concurrent + max_queued get 503; a background page (of a site crawl or a batch,
        bounded by its own concurrency) waits, and free slots go to foreground crawls first."""
        self.check_options(request)
        timeout_ms = self.timeout_ms(request.timeout_ms)
        url = await self.check_target(request.url)
        if background:
            async with self.slots.hold(background=True):
                return await self._crawl(request, url, timeout_ms)
        limit = self.settings.max_concurrent + self.settings.max_queued
        if self._admitted >= limit:
            raise ResourceExhausted(
                f"too many crawls in progress ({limit} running or queued); retry shortly",
            )
        self._admitted += 1
        try:
            async with self.slots.hold():
                return await self._crawl(request, url, timeout_ms)
        finally:
            self._admitted -= 1

    def _new_session(self) -> ProxySession:
        max_bytes = int(self.settings.max_transfer_mb * 1024 * 1024)
        return ProxySession(self.policy, self.resolver, max_bytes, _CONNECT_TIMEOUT)

    async def _crawl(self, request: CrawlRequest, url: str, timeout_ms: int) -> dict[str, Any]:
        # A context made ahead fits crawls with the default context options.
        warm = None if request.mobile or request.user_agent else self.warm.take()
        session = warm.session if warm is not None else self._new_session()
        try:
            if warm is None:
                await session.start()
            async with asyncio.timeout(timeout_ms / 1000 + _HANG_GRACE_SECONDS):
                loaded = await self._in_browser(request, url, timeout_ms, session, warm)
        except (TimeoutError, PlaywrightTimeout):
            raise net_failure("timeout", host_port(url)[0]) from None
        except BrowserUnavailable:
            raise Unavailable("the crawl browser could not be started") from None
        except BROWSER_GONE:
            logger.warning("crawl of a page failed in the browser", exc_info=True)
            raise Unavailable("the crawl browser failed during this crawl; retry") from None
        finally:
            await session.close()
        return await self._result(request, loaded, session)

    async def _in_browser(
        self,
        request: CrawlRequest,
        url: str,
        timeout_ms: int,
        session: ProxySession,
        warm: Warm | None,
    ) -> pages.LoadedPage:
        settings = self.settings
        deadline = pages.Deadline(timeout_ms / 1000)
        options = context_options(settings, session, request.mobile, request.user_agent)
        if request.headers:
            options["extra_http_headers"] = request.headers
        prepared = warm.prepared if warm is not None else None
        async with self.browser.context(prepared, **options) as context:
            taken = prepared is not None and context is prepared.context
            if taken and request.headers:
                await context.set_extra_http_headers(request.headers)
            if request.cookies:
                await context.add_cookies(
                    [{"name": k, "value": v, "url": url} for k, v in request.cookies.items()]
                )
            if request.block_resources:
                blocked = frozenset(request.block_resources)

                async def block(route: Any) -> None:
                    if route.request.resource_type in blocked:
                        await route.abort("blockedbyclient")
                    else:
                        await route.fallback()

                await context.route("**/*", block)
            page = prepared.page if prepared is not None and taken else await context.new_page()
            bad = await pages.bad_selectors(page, request.selectors())
            if bad:
                raise bad_selector_error(bad)
            try:
                navigation, partial = await pages.load(
                    page, url, deadline, request.wait_for_js, settings.js_wait_ms
                )
            except pages.NothingLoaded:
                raise net_failure("timeout", host_port(url)[0]) from None
            except pages.NavigationFailed as exc:
                raise self._navigation_error(exc.net_error, exc.url, session) from None
            self._check_documents(navigation, session)
            if not partial and (request.wait_for_selector or request.wait_ms):
                found = await pages.wait_more(
                    page, deadline, request.wait_for_selector, request.wait_ms
                )
                partial = not found
            clean = None
            if request.cleans() or request.html:
                clean = {
                    "include": request.include_tags or [],
                    "exclude": request.exclude_tags or [],
                    "onlyMain": request.only_main_content,
                }
            limits = {
                "maxHtml": settings.max_html_chars,
                "maxText": settings.max_text_chars,
                "maxLinks": settings.max_links if request.links else 0,
                "clean": clean,
            }
            snapshot = await pages.read(page, deadline, limits)
            loaded = pages.LoadedPage(snapshot, navigation, partial)
            if request.screenshot:
                loaded.screenshot = await pages.screenshot(
                    page, request.full_page, settings.max_screenshot_height, deadline
                )
            if request.pdf:
                loaded.pdf = await pages.pdf(page)
            self._check_documents(navigation, session)  # a refresh may have moved on since
            return loaded

    def _navigation_error(self, net_error: str, url: str, session: ProxySession) -> APIError:
        host, port = host_port(url)
        event = session.event_for(host, port)
        if event is not None:
            if event.refusal is not None:
                return refused(event.refusal)
            return net_failure(event.kind, host, net_error)
        return net_failure(classify_net_error(net_error), host, net_error)

    def _check_documents(self, navigation: pages.Navigation, session: ProxySession) -> None:
        """A document the proxy answered itself (refused hop, failed host) fails the crawl."""
        for response in navigation.responses:
            kind = response.headers.get(MARKER_HEADER)
            if kind is None:
                continue
            host, port = host_port(response.url)
            event = session.event_for(host, port)
            if event is not None and event.refusal is not None:
                raise refused(event.refusal)
            raise net_failure(kind, host)

    async def _result(
        self, request: CrawlRequest, loaded: pages.LoadedPage, session: ProxySession
    ) -> dict[str, Any]:
        snapshot = loaded.snapshot
        if request.cleans():
            extracted = await asyncio.to_thread(
                extract_cleaned,
                snapshot.get("cleaned_html") or "",
                request.markdown,
                self.settings.max_text_chars,
            )
        else:
            extracted = await asyncio.to_thread(
                extract,
                snapshot["html"],
                snapshot["url"],
                snapshot["text"],
                request.markdown,
                self.settings.min_extracted_chars,
                self.settings.max_text_chars,
            )
        responses = loaded.navigation.responses
        final_url = str(snapshot["url"])
        final_index = len(responses) - 1
        for index in range(len(responses) - 1, -1, -1):
            if responses[index].url.split("#", 1)[0] == final_url.split("#", 1)[0]:
                final_index = index
                break
        result: dict[str, Any] = {
            "url": final_url,
            "status_code": responses[final_index].status if responses else 0,
            "redirects": [
                {"url": r.url, "status_code": r.status} for r in responses[: max(final_index, 0)]
            ],
            "title": snapshot["title"],
            "text": extracted.text,
            "text_source": extracted.source,
            "metadata": {
                "description": snapshot["description"],
                "language": snapshot["language"],
            },
            "partial": loaded.partial or session.limit_hit,
            "truncated": bool(
                snapshot["html_truncated"]
                or snapshot["text_truncated"]
                or extracted.truncated
                or session.limit_hit
            ),
            "blocked_requests": sum(1 for e in session.events if e.kind == "refused"),
        }
        if request.markdown:
            result["markdown"] = extracted.markdown
        if request.links:
            result["links"] = snapshot["links"]
        if request.html:
            result["html"] = snapshot["html"]
            result["cleaned_html"] = snapshot.get("cleaned_html")
        if loaded.screenshot is not None:
            result["screenshot_base64"] = base64.b64encode(loaded.screenshot).decode("ascii")
        if loaded.pdf is not None:
            result["pdf_base64"] = base64.b64encode(loaded.pdf).decode("ascii")
        return result


def bad_selector_error(bad: list[str]) -> APIError:
    return InvalidRequest(
        f"not a valid CSS selector: {bad[0][:200]}",
        {"errors": [{"field": "selector", "message": s[:200]} for s in bad[:10]]},
    )
