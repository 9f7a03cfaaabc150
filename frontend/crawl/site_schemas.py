"""Request shapes of site crawls (POST /api/crawl/site) and maps (POST /api/crawl/map)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from frontend.crawl.schemas import PageOptions

SitemapMode = Literal["include", "skip", "only"]
_URL_FIELD = Field(
    min_length=1,
    max_length=4096,
    description="The start URL (http or https), under the same address policy as /api/crawl.",
)


def _compile(patterns: list[str] | None) -> list[str] | None:
    for pattern in patterns or ():
        if not pattern or len(pattern) > 500:
            raise ValueError("a pattern must be 1..500 characters")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"'{pattern[:100]}' is not a valid regular expression: {exc}"
            ) from None
    return patterns


class SiteCrawlRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://example.com/docs/", "max_pages": 20}]},
    )

    url: StrictStr = _URL_FIELD
    max_depth: StrictInt = Field(
        default=3, ge=0, le=100, description="Links followed from the start page (0: just it)."
    )
    max_pages: StrictInt = Field(
        default=100, ge=1, description="Pages loaded at most (up to `crawl.max_site_pages`)."
    )
    include_paths: list[StrictStr] | None = Field(
        default=None,
        max_length=50,
        description="Regular expressions on the path (and query): only matching links are "
        "followed (the start page always loads). A glob `/docs/*` is the regex `^/docs/`.",
    )
    exclude_paths: list[StrictStr] | None = Field(
        default=None, max_length=50, description="Regular expressions: matching links are skipped."
    )
    allow_subdomains: StrictBool = Field(
        default=False, description="Also follow links to subdomains of the start host."
    )
    allow_external: StrictBool = Field(
        default=False, description="Follow links to any host (the address policy still holds)."
    )
    ignore_robots: StrictBool = Field(
        default=False,
        description="Load pages robots.txt disallows for `crawl.robots_user_agent` (skipped by "
        "default).",
    )
    sitemap: SitemapMode = Field(
        default="include",
        description="include: sitemap URLs (from /sitemap.xml and robots.txt) join the links; "
        "skip: links only; only: the start page and the sitemap's URLs, no links followed.",
    )
    ignore_query_parameters: StrictBool = Field(
        default=False,
        description="Treat URLs differing only in their query as one page. Tracking "
        "parameters (utm_*, gclid, fbclid, ...) are always dropped, the rest sorted.",
    )
    delay_ms: StrictInt | None = Field(
        default=None,
        ge=0,
        le=60_000,
        description="Pause between page loads on one host (default `crawl.site_host_delay_ms`; "
        "a larger robots.txt Crawl-delay wins, up to `crawl.max_crawl_delay_ms`).",
    )
    concurrency: StrictInt | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Pages loading at once on one host (default `crawl.site_host_concurrency`, "
        "at most `crawl.max_concurrent`).",
    )
    max_error_rate: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Stop once more than this share of at least 10 loaded pages failed.",
    )
    page: PageOptions = Field(
        default_factory=PageOptions,
        description="How each page is loaded and returned: the options of POST /api/crawl.",
    )

    @field_validator("include_paths", "exclude_paths")
    @classmethod
    def _check_patterns(cls, value: list[str] | None) -> list[str] | None:
        return _compile(value)


class MapRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com"}]}
    )

    url: StrictStr = _URL_FIELD
    search: StrictStr | None = Field(
        default=None, max_length=500, description="Only URLs (or link texts) containing this."
    )
    limit: StrictInt | None = Field(
        default=None, ge=1, description="URLs returned at most (up to `crawl.max_map_urls`)."
    )
    include_subdomains: StrictBool = Field(default=True, description="Also subdomains' URLs.")
    ignore_query_parameters: StrictBool = Field(
        default=True, description="URLs differing only in their query count once."
    )
    sitemap: SitemapMode = Field(
        default="include",
        description="include: sitemap URLs and the start page's links; skip: links only; "
        "only: sitemap URLs only.",
    )
    timeout_ms: StrictInt | None = Field(
        default=None, ge=100, description="Load time of the start page (as /api/crawl)."
    )


class MapLink(BaseModel):
    url: str
    title: str | None = None


class MapResponse(BaseModel):
    request_id: str
    url: str
    links: list[MapLink]
