"""Firecrawl-compatible POST /v2/scrape and POST /v2/map (firecrawl-py 4.x, LangChain's and
LlamaIndex's Firecrawl loaders, ...). Our API keys are the bearer tokens; errors in Firecrawl's
shape (compat.firecrawl_errors). Unknown fields are ignored, as Firecrawl's SDK sends many."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from frontend.compat.firecrawl_schemas import ScrapeBody, to_document
from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.crawl.mapping import map_site
from frontend.crawl.routes import CrawlServiceDep, crawl_route
from frontend.crawl.schemas import CrawlRequest
from frontend.crawl.service import CrawlService
from frontend.crawl.site_schemas import MapRequest

router = APIRouter(route_class=StrictJSONRoute, prefix="/v2", tags=["firecrawl"])


class ScrapeResult(BaseModel):
    success: Literal[True]
    data: dict[str, Any] = Field(
        description="markdown, html, rawHtml, links, screenshot (data URL) as asked, and "
        "metadata (title, description, language, sourceURL, url, statusCode, scrapeId)"
    )


@crawl_route(router, "/scrape", ScrapeResult, "Firecrawl v2 scrape: one page in a real browser")
async def scrape(body: ScrapeBody, request: Request, service: CrawlServiceDep) -> Response:
    fields = body.page_fields(service.settings.max_timeout_ms)
    wanted, _ = body.formats_wanted()
    result = await service.crawl(CrawlRequest(url=body.url, **fields))
    document = to_document(result, body.url, wanted, request_id_of(request))
    return json_response({"success": True, "data": document})


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


@crawl_route(
    router,
    "/map",
    MapResult,
    "Firecrawl v2 map: a site's URLs from its sitemaps and the start page's links",
)
async def map_(body: MapBody, service: CrawlServiceDep) -> Response:
    return json_response({"success": True, "links": await map_links(body, service)})


async def map_links(body: MapBody, service: CrawlService) -> list[dict[str, Any]]:
    """[{url, title?}] of a map request."""
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
    return [
        {"url": link["url"], **({"title": link["title"]} if link["title"] else {})}
        for link in links
    ]
