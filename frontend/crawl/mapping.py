"""The URLs of a site (POST /api/crawl/map, /v2/map): its sitemaps and the start page's
links, in scope, deduplicated, filtered by a search term."""

from __future__ import annotations

from typing import Any

from frontend.core.errors import APIError
from frontend.crawl.fetch import Fetcher
from frontend.crawl.robots import fetch_robots
from frontend.crawl.schemas import CrawlRequest
from frontend.crawl.service import CrawlService
from frontend.crawl.site import origin_of
from frontend.crawl.site_schemas import MapRequest
from frontend.crawl.sitemap import sitemap_urls
from frontend.crawl.urls import host_of, in_scope, normalize


async def map_site(service: CrawlService, request: MapRequest) -> list[dict[str, Any]]:
    """[{url, title?}], the start URL first, at most `limit` (and `crawl.max_map_urls`)."""
    settings = service.settings
    limit = min(request.limit or settings.max_map_urls, settings.max_map_urls)
    service.timeout_ms(request.timeout_ms)
    start = await service.check_target(request.url)  # as the browser reads it
    start_host = host_of(start)

    def keep(url: str) -> bool:
        return in_scope(host_of(url), start_host, request.include_subdomains, False)

    found: dict[str, str | None] = {}

    def add(url: str, title: str | None) -> None:
        key = normalize(url, request.ignore_query_parameters)
        if key is None or not keep(key):
            return
        if key not in found or (title and not found[key]):
            found[key] = title or found.get(key)

    add(start, None)
    page_error: APIError | None = None
    if request.sitemap != "only":
        try:
            page = await service.crawl(
                CrawlRequest(
                    url=start, links=True, wait_for_js=False, timeout_ms=request.timeout_ms
                )
            )
        except APIError as exc:
            page_error = exc
        else:
            add(str(page["url"]), str(page.get("title") or "") or None)
            for link in page.get("links") or ():
                add(link["url"], link.get("text") or None)
    if request.sitemap != "skip":
        async with Fetcher(
            service.policy,
            service.resolver,
            settings.fetch_user_agent,
            not settings.ignore_tls_errors,
        ) as fetcher:
            origin = origin_of(start)
            robots = await fetch_robots(fetcher, origin)
            roots = [*robots.sitemaps, f"{origin}/sitemap.xml"]
            for url in await sitemap_urls(
                fetcher, roots, settings.max_sitemap_urls, settings.max_sitemaps, keep
            ):
                add(url, None)
    if page_error is not None and len(found) <= 1:
        raise page_error  # nothing but the start URL, which could not be loaded
    links = [{"url": url, "title": title} for url, title in found.items()]
    if request.search:
        term = request.search.lower()

        links = [
            link
            for link in links
            if term in str(link["url"]).lower() or term in str(link["title"] or "").lower()
        ]
    return links[:limit]
