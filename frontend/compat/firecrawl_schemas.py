"""Firecrawl v2 request shapes and their translation to ours: scrape options to PageOptions, a
crawl to a SiteCrawlRequest, and a page result to Firecrawl's document. Unknown fields are
ignored, as Firecrawl's SDK sends many (maxAge, storeInCache, blockAds, ...)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from frontend.core.errors import InvalidRequest
from frontend.crawl.schemas import PageOptions
from frontend.crawl.site_schemas import SiteCrawlRequest
from frontend.crawl.urls import path_of

FORMATS = ("markdown", "html", "rawHtml", "links", "screenshot", "screenshot@fullPage")
# Our fields by the Firecrawl field they come from (for error messages).
_FIRECRAWL_NAMES = {
    "include_tags": "includeTags",
    "exclude_tags": "excludeTags",
    "wait_ms": "waitFor",
    "timeout_ms": "timeout",
    "include_paths": "includePaths",
    "exclude_paths": "excludePaths",
    "max_pages": "limit",
    "max_depth": "maxDiscoveryDepth",
}


def bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, {"errors": [{"field": field, "message": message}]})


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"][:1]) or "body"
    field = _FIRECRAWL_NAMES.get(name, name)
    return bad(field, f"{field}: {str(first['msg'])[:300]}")


def _default_formats() -> list[str | dict[str, Any]]:
    return ["markdown"]


class ScrapeOptionsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    formats: list[StrictStr | dict[str, Any]] = Field(
        default_factory=_default_formats,
        max_length=10,
        description="markdown, html (cleaned), rawHtml, links, screenshot (or "
        '{"type": "screenshot", "fullPage": true}); others are refused with 400',
    )
    onlyMainContent: StrictBool = True
    includeTags: list[StrictStr] | None = Field(default=None, max_length=50)
    excludeTags: list[StrictStr] | None = Field(default=None, max_length=50)
    headers: dict[StrictStr, StrictStr] | None = Field(default=None, max_length=50)
    waitFor: StrictInt = Field(default=0, ge=0, le=60_000, description="ms to wait after load")
    timeout: StrictInt | None = Field(
        default=None, ge=100, description="ms; capped at crawl.max_timeout_ms"
    )
    mobile: StrictBool = False
    actions: list[Any] | None = Field(default=None, description="Not supported: must be empty")

    def formats_wanted(self) -> tuple[set[str], bool]:
        """(formats, full-page screenshot). Raises InvalidRequest for what we cannot make."""
        wanted: set[str] = set()
        full_page = False
        for item in self.formats:
            name = item if isinstance(item, str) else str(item.get("type", ""))
            if name not in FORMATS:
                raise bad(
                    "formats",
                    f"format '{name[:50]}' is not supported here (supported: "
                    f"{', '.join(FORMATS[:5])})",
                )
            if name == "screenshot@fullPage" or (
                isinstance(item, dict) and item.get("fullPage") is True
            ):
                full_page = True
                name = "screenshot"
            wanted.add(name)
        return wanted, full_page

    def page_fields(self, max_timeout_ms: int) -> dict[str, Any]:
        """Our PageOptions fields (checked); raises InvalidRequest in Firecrawl's terms."""
        if self.actions:
            raise bad("actions", "browser actions are not supported by this server")
        wanted, full_page = self.formats_wanted()
        fields: dict[str, Any] = {
            "markdown": "markdown" in wanted,
            "html": bool(wanted & {"html", "rawHtml"}),
            "links": "links" in wanted,
            "screenshot": "screenshot" in wanted,
            "full_page": full_page,
            "only_main_content": self.onlyMainContent,
            "include_tags": self.includeTags or None,
            "exclude_tags": self.excludeTags or None,
            "headers": self.headers or None,
            "wait_ms": self.waitFor or None,
            "timeout_ms": None if self.timeout is None else min(self.timeout, max_timeout_ms),
            "mobile": self.mobile,
        }
        try:
            PageOptions(**fields)
        except ValidationError as exc:
            raise _invalid(exc) from None
        return fields


class ScrapeBody(ScrapeOptionsBody):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"url": "https://example.com", "formats": ["markdown"]}]},
    )

    url: StrictStr = Field(min_length=1, max_length=4096)


def to_document(
    result: dict[str, Any], source_url: str, wanted: set[str], scrape_id: str
) -> dict[str, Any]:
    """Firecrawl's document from our page result."""
    data: dict[str, Any] = {
        "metadata": {
            "title": result["title"],
            "description": result["metadata"]["description"],
            "language": result["metadata"]["language"],
            "sourceURL": source_url,
            "url": result["url"],
            "statusCode": result["status_code"],
            "contentType": "text/html",
            "scrapeId": scrape_id,
            "proxyUsed": "basic",
            "creditsUsed": 1,
        }
    }
    if "markdown" in wanted:
        data["markdown"] = result.get("markdown") or ""
    if "html" in wanted:
        data["html"] = result.get("cleaned_html") or ""
    if "rawHtml" in wanted:
        data["rawHtml"] = result.get("html") or ""
    if "links" in wanted:
        data["links"] = [link["url"] for link in result.get("links") or ()]
    if "screenshot" in wanted and result.get("screenshot_base64"):
        data["screenshot"] = "data:image/png;base64," + result["screenshot_base64"]
    if result.get("partial"):
        data["warning"] = "The page had not finished loading when time was up."
    return data


# Firecrawl's `webhook` (a URL, or {url, headers, metadata, events}): accepted, never called.
IgnoredWebhook = Annotated[
    StrictStr | dict[str, Any] | None,
    Field(description="Not sent: the answer's `warning` says so; poll `url`"),
]


class CrawlBody(BaseModel):
    """POST /v2/crawl's body (for the job layer: /v2/crawl is served once jobs exist)."""

    model_config = ConfigDict(extra="ignore")

    url: StrictStr = Field(min_length=1, max_length=4096)
    limit: StrictInt = Field(default=100, ge=1)
    maxDiscoveryDepth: StrictInt | None = Field(default=None, ge=0, le=100)
    includePaths: list[StrictStr] | None = None
    excludePaths: list[StrictStr] | None = None
    sitemap: Literal["include", "skip", "only"] = "include"
    ignoreQueryParameters: StrictBool = False
    crawlEntireDomain: StrictBool = False
    allowExternalLinks: StrictBool = False
    allowSubdomains: StrictBool = False
    ignoreRobotsTxt: StrictBool = False
    delay: float | None = Field(default=None, ge=0, le=60, description="seconds")
    maxConcurrency: StrictInt | None = Field(default=None, ge=1, le=64)
    scrapeOptions: ScrapeOptionsBody = Field(default_factory=ScrapeOptionsBody)
    webhook: IgnoredWebhook = None

    def site_request(self, max_timeout_ms: int) -> SiteCrawlRequest:
        """Ours. As Firecrawl, without crawlEntireDomain only the start URL's path and below
        are crawled."""
        include = list(self.includePaths or ())
        path = path_of(self.url).split("?")[0]  # "/" when unparsable: SiteCrawl refuses it
        folder = path.rsplit("/", 1)[0] if not path.endswith("/") else path.rstrip("/")
        if not self.crawlEntireDomain and folder and not include:
            include = [f"^{re.escape(folder)}(/|$|\\?)"]
        page = PageOptions(**self.scrapeOptions.page_fields(max_timeout_ms))
        try:
            return SiteCrawlRequest(
                url=self.url,
                max_pages=self.limit,
                max_depth=10 if self.maxDiscoveryDepth is None else self.maxDiscoveryDepth,
                include_paths=include or None,
                exclude_paths=self.excludePaths or None,
                sitemap=self.sitemap,
                ignore_query_parameters=self.ignoreQueryParameters,
                allow_external=self.allowExternalLinks,
                allow_subdomains=self.allowSubdomains,
                ignore_robots=self.ignoreRobotsTxt,
                delay_ms=None if self.delay is None else int(self.delay * 1000),
                concurrency=self.maxConcurrency,
                page=page,
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
