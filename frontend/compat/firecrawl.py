"""Firecrawl-compatible POST /v2/scrape and POST /v2/map (firecrawl-py 4.x, LangChain's and
LlamaIndex's Firecrawl loaders, ...). Our API keys are the bearer tokens; errors in Firecrawl's
shape (compat.firecrawl_errors). Unknown fields are ignored, as Firecrawl's SDK sends many."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from frontend.core.errors import InvalidRequest, json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.crawl.mapping import map_site
from frontend.crawl.routes import CRAWL_RESPONSES, CrawlServiceDep
from frontend.crawl.schemas import CrawlRequest
from frontend.crawl.site_schemas import MapRequest

router = APIRouter(route_class=StrictJSONRoute, prefix="/v2", tags=["firecrawl"])
# Our page options by the Firecrawl field they come from (for error messages).
_FIRECRAWL_NAMES = {
    "include_tags": "includeTags",
    "exclude_tags": "excludeTags",
    "wait_ms": "waitFor",
    "timeout_ms": "timeout",
}
FORMATS = ("markdown", "html", "rawHtml", "links", "screenshot", "screenshot@fullPage")


def _bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, {"errors": [{"field": field, "message": message}]})


def _default_formats() -> list[str | dict[str, Any]]:
    return ["markdown"]


class ScrapeBody(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"url": "https://example.com", "formats": ["markdown"]}]},
    )

    url: StrictStr = Field(min_length=1, max_length=4096)
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
        """(formats, full-page screenshot)."""
        wanted: set[str] = set()
        full_page = False
        for item in self.formats:
            name = item if isinstance(item, str) else str(item.get("type", ""))
            if name not in FORMATS:
                raise _bad(
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


class ScrapeResult(BaseModel):
    success: Literal[True]
    data: dict[str, Any] = Field(
        description="markdown, html, rawHtml, links, screenshot (data URL) as asked, and "
        "metadata (title, description, language, sourceURL, url, statusCode, scrapeId)"
    )


@router.post(
    "/scrape",
    response_model=ScrapeResult,
    responses=CRAWL_RESPONSES,
    summary="Firecrawl v2 scrape: one page in a real browser",
)
async def scrape(body: ScrapeBody, request: Request, service: CrawlServiceDep) -> Response:
    if body.actions:
        raise _bad("actions", "browser actions are not supported by this server")
    wanted, full_page = body.formats_wanted()
    timeout = None
    if body.timeout is not None:
        timeout = min(body.timeout, service.settings.max_timeout_ms)
    try:
        page_request = CrawlRequest(
            url=body.url,
            markdown="markdown" in wanted,
            html=bool(wanted & {"html", "rawHtml"}),
            links="links" in wanted,
            screenshot="screenshot" in wanted,
            full_page=full_page,
            only_main_content=body.onlyMainContent,
            include_tags=body.includeTags or None,
            exclude_tags=body.excludeTags or None,
            headers=body.headers or None,
            wait_ms=body.waitFor or None,
            timeout_ms=timeout,
            mobile=body.mobile,
        )
    except ValidationError as exc:  # the page options' own checks (headers, selectors)
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        field = _FIRECRAWL_NAMES.get(name, name)
        raise _bad(field, f"{field}: {str(first['msg'])[:300]}") from None
    result = await service.crawl(page_request)
    request_id = request_id_of(request)
    data: dict[str, Any] = {
        "metadata": {
            "title": result["title"],
            "description": result["metadata"]["description"],
            "language": result["metadata"]["language"],
            "sourceURL": body.url,
            "url": result["url"],
            "statusCode": result["status_code"],
            "contentType": "text/html",
            "scrapeId": request_id,
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
    if result["partial"]:
        data["warning"] = "The page had not finished loading when time was up."
    return json_response({"success": True, "data": data})


class MapBody(BaseModel):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"url": "https://example.com"}]}
    )

    url: StrictStr = Field(min_length=1, max_length=4096)
    search: StrictStr | None = Field(default=None, max_length=500)
    sitemap: Literal["include", "skip", "only"] = "include"
    includeSubdomains: StrictBool = True
    ignoreQueryParameters: StrictBool = True
    limit: StrictInt | None = Field(default=None, ge=1, le=100_000)
    timeout: StrictInt | None = Field(default=None, ge=100)


class MapResult(BaseModel):
    success: Literal[True]
    links: list[dict[str, Any]] = Field(description="[{url, title?}]")


@router.post(
    "/map",
    response_model=MapResult,
    responses=CRAWL_RESPONSES,
    summary="Firecrawl v2 map: a site's URLs from its sitemaps and the start page's links",
)
async def map_(body: MapBody, service: CrawlServiceDep) -> Response:
    timeout = None
    if body.timeout is not None:
        timeout = min(body.timeout, service.settings.max_timeout_ms)
    links = await map_site(
        service,
        MapRequest(
            url=body.url,
            search=body.search,
            limit=body.limit,
            include_subdomains=body.includeSubdomains,
            ignore_query_parameters=body.ignoreQueryParameters,
            sitemap=body.sitemap,
            timeout_ms=timeout,
        ),
    )
    shaped = [
        {"url": link["url"], **({"title": link["title"]} if link["title"] else {})}
        for link in links
    ]
    return json_response({"success": True, "links": shaped})
