"""The site-crawl engine: a frontier from the start page's links and the sitemaps, robots.txt,
per-host politeness, dedup, limits and a stop on errors. Each page goes through
CrawlService.crawl (the browser behind the filtering proxy); robots.txt and sitemaps through a
Fetcher on the same policy. Results go to a callback as they finish: the engine keeps none,
so memory stays flat however large the site.

Use: `crawl = SiteCrawl(service, request, on_page, on_progress)`; `await crawl.prepare()`
(bad input raises APIError before any work); `summary = await crawl.run()`; `crawl.cancel()`
from elsewhere stops it after the pages in flight (cancelling run()'s task works too). A job
layer stores what `on_page` gets and the Progress `on_progress` reports; Firecrawl's
/v2/crawl maps onto it with compat.firecrawl_schemas (CrawlBody.site_request, to_document)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from frontend.core.errors import APIError, InvalidRequest, ResourceExhausted
from frontend.crawl.fetch import Fetcher
from frontend.crawl.robots import Robots, fetch_robots
from frontend.crawl.schemas import CrawlRequest
from frontend.crawl.service import CrawlService
from frontend.crawl.site_schemas import SiteCrawlRequest
from frontend.crawl.sitemap import sitemap_urls
from frontend.crawl.urls import host_of, in_scope, normalize, parse_url, path_of

logger = logging.getLogger(__name__)

_MIN_PAGES_FOR_ERROR_RATE = 10
_BUSY_RETRIES = 20
_BUSY_WAIT_SECONDS = 0.5
_FRONTIER_FACTOR = 20  # URLs kept waiting at most, per page still allowed
MAX_URL_CHARS = 4096  # as POST /api/crawl's url


@dataclass
class Progress:
    done: int = 0  # pages loaded
    failed: int = 0  # pages that failed (refused, unreachable, timed out, ...)
    queued: int = 0  # URLs waiting in the frontier
    skipped_robots: int = 0
    duplicates: int = 0  # pages whose final URL (after redirects) was already loaded
    blocked_requests: int = 0  # requests the address policy refused (pages and fetches)


PageCallback = Callable[[dict[str, Any]], Awaitable[None]]
ProgressCallback = Callable[[Progress], Awaitable[None]]


def origin_of(url: str) -> str:
    parsed = parse_url(url)
    return parsed.origin if parsed is not None else ""


@dataclass
class _Host:
    slots: asyncio.Semaphore
    delay: float
    next_start: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SiteCrawl:
    """One site crawl. `prepare()` checks the request (raises APIError); `run()` crawls and
    returns the summary; `cancel()` stops it after the pages in flight."""

    def __init__(
        self,
        service: CrawlService,
        request: SiteCrawlRequest,
        on_page: PageCallback,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.service = service
        self.settings = service.settings
        self.request = request
        self.on_page = on_page
        self.on_progress = on_progress
        self.progress = Progress()
        self.stop_reason: str | None = None
        self._cancel = asyncio.Event()
        self._frontier: deque[tuple[str, int]] = deque()
        self._seen: set[str] = set()
        self._finals: set[str] = set()
        self._robots: dict[str, Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._hosts: dict[str, _Host] = {}
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._include = [re.compile(p) for p in request.include_paths or ()]
        self._exclude = [re.compile(p) for p in request.exclude_paths or ()]
        self.start_url = request.url.strip()
        self.start_host = host_of(self.start_url)
        self.concurrency = min(
            request.concurrency or self.settings.site_host_concurrency,
            self.settings.max_concurrent,
        )

    async def prepare(self) -> None:
        if self.request.max_pages > self.settings.max_site_pages:
            raise InvalidRequest(
                f"max_pages must be at most {self.settings.max_site_pages} (crawl.max_site_pages)",
                {"errors": [{"field": "max_pages", "message": "over crawl.max_site_pages"}]},
            )
        self.service.check_options(self.request.page)
        # From here on the URL as the browser reads it: the one whose address was checked.
        self.start_url = await self.service.check_target(self.start_url)
        self.start_host = host_of(self.start_url)
        if normalize(self.start_url) is None:
            raise InvalidRequest("url is not an http(s) URL with a host")
        await self.service.check_selectors(self.request.page.selectors())

    def cancel(self) -> None:
        self._cancel.set()
        self._wake.set()

    def _key(self, url: str) -> str | None:
        return normalize(url, self.request.ignore_query_parameters)

    def _wanted(self, url: str) -> bool:
        """Scope and path patterns (robots is checked when the URL's turn comes)."""
        request = self.request
        if not in_scope(
            host_of(url), self.start_host, request.allow_subdomains, request.allow_external
        ):
            return False
        path = path_of(url)
        if self._include and not any(p.search(path) for p in self._include):
            return False
        return not any(p.search(path) for p in self._exclude)

    def _enqueue(self, url: str, depth: int) -> None:
        key = self._key(url)
        if key is None or key in self._seen or len(key) > MAX_URL_CHARS:
            return
        room = self.request.max_pages * _FRONTIER_FACTOR
        if len(self._frontier) >= room:
            return
        self._seen.add(key)
        self._frontier.append((key, depth))
        self._wake.set()

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.settings.max_site_seconds
        fetcher = Fetcher(
            self.service.policy,
            self.service.resolver,
            self.settings.fetch_user_agent,
            not self.settings.ignore_tls_errors,
        )
        async with fetcher:
            self._fetcher = fetcher
            start_key = self._key(self.start_url) or self.start_url
            self._seen.add(start_key)
            self._frontier.append((self.start_url, 0))
            if self.request.sitemap != "skip":
                await self._add_sitemaps(fetcher)
            workers = [asyncio.create_task(self._worker(deadline)) for _ in range(self.concurrency)]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            self.progress.blocked_requests += fetcher.refusals
        self.progress.queued = len(self._frontier)
        if self.stop_reason is None:
            self.stop_reason = "cancelled" if self._cancel.is_set() else "done"
        return {
            "status": "completed" if self.stop_reason == "done" else "stopped",
            "stop_reason": self.stop_reason,
            **asdict(self.progress),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }

    async def _add_sitemaps(self, fetcher: Fetcher) -> None:
        origin = origin_of(self.start_url)
        robots = await self._robots_for(origin)
        roots = [*robots.sitemaps, f"{origin}/sitemap.xml"]
        limit = min(self.settings.max_sitemap_urls, self.request.max_pages * _FRONTIER_FACTOR)
        found = await sitemap_urls(
            fetcher,
            roots,
            limit,
            self.settings.max_sitemaps,
            lambda url: in_scope(
                host_of(url), self.start_host, self.request.allow_subdomains, True
            ),
        )
        for url in found:
            if self._wanted(url) and self.request.max_depth >= 1:
                self._enqueue(url, 1)

    async def _robots_for(self, origin: str) -> Robots:
        # One fetch per origin; a slow host's robots.txt does not hold up the others.
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            robots = self._robots.get(origin)
            if robots is None:
                robots = await fetch_robots(self._fetcher, origin)
                self._robots[origin] = robots
            return robots

    def _attempted(self) -> int:
        return self.progress.done + self.progress.failed

    def _should_stop(self, deadline: float) -> bool:
        if self.stop_reason is not None or self._cancel.is_set():
            return True
        if self._attempted() + self._in_flight >= self.request.max_pages:
            if self._in_flight == 0 and self._frontier:
                self.stop_reason = "max_pages"
            return True
        if time.monotonic() > deadline:
            self.stop_reason = "time_limit"
            return True
        attempted = self._attempted()
        if (
            attempted >= _MIN_PAGES_FOR_ERROR_RATE
            and self.progress.failed / attempted > self.request.max_error_rate
        ):
            self.stop_reason = "error_rate"
            return True
        return False

    async def _worker(self, deadline: float) -> None:
        while True:
            if self._should_stop(deadline):
                if self._in_flight == 0 or self.stop_reason is not None or self._cancel.is_set():
                    return
                await self._wait()
                continue
            if not self._frontier:
                if self._in_flight == 0:
                    self._wake.set()  # let the others see the end too
                    return
                await self._wait()
                continue
            url, depth = self._frontier.popleft()
            self._in_flight += 1
            try:
                await self._visit(url, depth)
            finally:
                self._in_flight -= 1
                self._wake.set()

    async def _wait(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _visit(self, url: str, depth: int) -> None:
        if url in self._finals:  # a redirect elsewhere already ended here
            self.progress.duplicates += 1
            return
        origin = origin_of(url)
        if not self.request.ignore_robots:
            robots = await self._robots_for(origin)
            if not robots.allowed(url, self.settings.robots_user_agent):
                self.progress.skipped_robots += 1
                return
        host = await self._host(origin)
        async with host.slots:
            async with host.lock:  # start times spaced by the delay
                wait = host.next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                host.next_start = time.monotonic() + host.delay
            result = await self._load(url)
        record: dict[str, Any] | None = None
        if "error" in result:
            self.progress.failed += 1
            record = {"url": url, "depth": depth, **result}
        else:
            final = self._key(result["url"]) or result["url"]
            if final in self._finals:
                self.progress.duplicates += 1
            else:
                self._finals.add(final)
                self._seen.add(final)
                self.progress.done += 1
                self._follow(result, depth)
                if not self.request.page.links:
                    result.pop("links", None)
                record = {"depth": depth, **result}
            self.progress.blocked_requests += int(result.get("blocked_requests", 0))
        self.progress.queued = len(self._frontier)
        if record is not None:
            await self.on_page(record)
        if self.on_progress is not None:
            await self.on_progress(self.progress)

    async def _host(self, origin: str) -> _Host:
        host = self._hosts.get(origin)
        if host is None:
            delay_ms = self.request.delay_ms
            if delay_ms is None:
                delay_ms = self.settings.site_host_delay_ms
            if not self.request.ignore_robots:
                robots_delay = (await self._robots_for(origin)).delay_ms(
                    self.settings.robots_user_agent
                )
                if robots_delay is not None:
                    delay_ms = max(delay_ms, min(robots_delay, self.settings.max_crawl_delay_ms))
            host = _Host(asyncio.Semaphore(self.concurrency), delay_ms / 1000)
            self._hosts[origin] = host
        return host

    async def _load(self, url: str) -> dict[str, Any]:
        options = self.request.page.model_dump()
        options["links"] = True  # the frontier needs them
        return await load_page(self.service, CrawlRequest(url=url, **options))

    def _follow(self, result: dict[str, Any], depth: int) -> None:
        if self.request.sitemap == "only" or depth >= self.request.max_depth:
            return
        for link in result.get("links") or ():
            url = link["url"] if isinstance(link, dict) else str(link)
            if self._wanted(url):
                self._enqueue(url, depth + 1)


async def load_page(service: CrawlService, page: CrawlRequest) -> dict[str, Any]:
    """One page of a site crawl or batch: its result, or `status_code` and `error` (waits
    while other crawls hold every slot, rather than failing the page)."""
    for _ in range(_BUSY_RETRIES):
        try:
            started = time.monotonic()
            result = await service.crawl(page, background=True)
            result["fetch_time_ms"] = round((time.monotonic() - started) * 1000, 2)
            return result
        except ResourceExhausted:
            await asyncio.sleep(_BUSY_WAIT_SECONDS)  # other crawls hold the slots
        except APIError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.details:
                error["details"] = exc.details
            return {"status_code": exc.status, "error": error}
    return {
        "status_code": 503,
        "error": {"code": "RESOURCE_EXHAUSTED", "message": "the crawl slots stayed busy"},
    }
