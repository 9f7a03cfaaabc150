"""robots.txt of a site crawl, read with Protego (Scrapy's parser), per RFC 9309: 4xx means
no rules, 5xx or an unreachable file means nothing may be crawled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from protego import Protego

from frontend.crawl.fetch import Fetcher, RefusedFetch

logger = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309: at least 500 KiB must be parsed


@dataclass
class Robots:
    """The rules of one origin; `parser` None with `allow_all` means no rules."""

    parser: Protego | None
    allow_all: bool
    sitemaps: list[str] = field(default_factory=list)

    def allowed(self, url: str, agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, agent))

    def delay_ms(self, agent: str) -> int | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return None if delay is None else int(float(delay) * 1000)


async def fetch_robots(fetcher: Fetcher, origin: str) -> Robots:
    """The robots.txt of `origin` (scheme://host[:port])."""
    try:
        fetched = await fetcher.get(f"{origin}/robots.txt", MAX_ROBOTS_BYTES)
    except RefusedFetch:
        # Nothing was fetched; the pages themselves are refused by the same policy, with an
        # error that says so (rather than a robots skip).
        return Robots(None, allow_all=True)
    if fetched is None or fetched.status >= 500:
        logger.info("robots.txt of %s unreachable: crawling nothing there", origin)
        return Robots(None, allow_all=False)
    if fetched.status >= 400:
        return Robots(None, allow_all=True)
    if fetched.status >= 300:  # more redirects than followed
        return Robots(None, allow_all=True)
    text = fetched.body.decode("utf-8", "replace")
    try:
        parser = Protego.parse(text)
    except (ValueError, TypeError):  # Protego is lenient; a broken file means no rules
        return Robots(None, allow_all=True)
    return Robots(parser, allow_all=True, sitemaps=list(parser.sitemaps))
