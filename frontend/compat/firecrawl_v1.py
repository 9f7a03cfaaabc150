"""Firecrawl's v1 API, which Dify's Firecrawl source and firecrawl-py's V1FirecrawlApp speak:
/v1/scrape, /v1/map, /v1/crawl and /v1/batch/scrape with their status, cancel and errors. The
v2 routes' work, with v1's field names (maxDepth, allowBackwardLinks, ignoreSitemap,
sitemapOnly) and v1's map answer (links as strings); errors in Firecrawl's shape."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from frontend.compat import firecrawl, firecrawl_jobs
from frontend.compat.firecrawl_schemas import CrawlBody
from frontend.core.errors import json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.crawl.routes import CRAWL_RESPONSES, CrawlServiceDep, crawl_route
from frontend.crawl.urls import path_of
from frontend.jobs.routes import JobsDep

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1", tags=["firecrawl"])


class V1MapBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: StrictStr = Field(min_length=1, max_length=4096)
    search: StrictStr | None = Field(default=None, max_length=500)
    ignoreSitemap: StrictBool = False
    sitemapOnly: StrictBool = False
    includeSubdomains: StrictBool = True
    limit: StrictInt | None = Field(default=None, ge=1, le=100_000)
    timeout: StrictInt | None = Field(default=None, ge=100)

    def v2(self) -> firecrawl.MapBody:
        sitemap: Literal["include", "skip", "only"] = "include"
        if self.sitemapOnly:
            sitemap = "only"
        elif self.ignoreSitemap:
            sitemap = "skip"
        return firecrawl.MapBody(
            url=self.url,
            search=self.search,
            sitemap=sitemap,
            includeSubdomains=self.includeSubdomains,
            limit=self.limit,
            timeout=self.timeout,
        )


class V1MapResult(BaseModel):
    success: Literal[True]
    links: list[str]


class V1CrawlBody(CrawlBody):
    """v1's crawl request: v2's fields and v1's names for some. `maxDepth` limits the URL
    path's depth below the start URL's (as Firecrawl v1 counts it), `maxDiscoveryDepth` the
    link hops; `allowBackwardLinks` is v2's `crawlEntireDomain`."""

    maxDepth: StrictInt | None = Field(default=None, ge=0, le=100)
    ignoreSitemap: StrictBool = False
    allowBackwardLinks: StrictBool = False
    crawlEntireDomain: StrictBool | None = None  # type: ignore[assignment]  # None: v1's name

    def v2(self) -> CrawlBody:
        exclude = list(self.excludePaths or ())
        if self.maxDepth is not None:
            base = len([part for part in path_of(self.url).split("?")[0].split("/") if part])
            # more non-empty path segments than the start URL's plus maxDepth: left out
            exclude.append(rf"^(?:/[^/?#]+){{{base + self.maxDepth + 1}}}")
        entire = self.crawlEntireDomain
        fields = self.model_dump(include=set(CrawlBody.model_fields))
        return CrawlBody.model_validate(
            {
                **fields,
                "excludePaths": exclude or None,
                "sitemap": "skip" if self.ignoreSitemap else self.sitemap,
                "crawlEntireDomain": self.allowBackwardLinks if entire is None else entire,
            }
        )


@crawl_route(router, "/map", V1MapResult, "Firecrawl v1 map: a site's URLs (as strings)")
async def map_v1(body: V1MapBody, service: CrawlServiceDep) -> Response:
    links = await firecrawl.map_links(body.v2(), service)
    return json_response({"success": True, "links": [link["url"] for link in links]})


@firecrawl_jobs.start_route(
    router, "/crawl", "Firecrawl v1 crawl: start a site crawl job (poll GET /v1/crawl/{id})"
)
async def crawl_v1(
    body: V1CrawlBody, request: Request, service: CrawlServiceDep, jobs: JobsDep
) -> Response:
    try:
        v2 = body.v2()
    except ValueError:  # a URL the path depth cannot be read from: refused as v2 refuses it
        v2 = CrawlBody(url=body.url, limit=body.limit)
    return await firecrawl_jobs.JobStart(request, service, jobs, "v1").site_crawl(v2)


@firecrawl_jobs.start_route(
    router, "/batch/scrape", "Firecrawl v1 batch scrape: start a job loading a list of pages"
)
async def batch_v1(
    body: firecrawl_jobs.BatchBody, request: Request, service: CrawlServiceDep, jobs: JobsDep
) -> Response:
    return await firecrawl_jobs.JobStart(request, service, jobs, "v1").batch_scrape(body)


router.add_api_route(
    "/scrape",
    firecrawl.scrape,
    methods=["POST"],
    response_model=firecrawl.ScrapeResult,
    responses=CRAWL_RESPONSES,
    summary="Firecrawl v1 scrape: one page in a real browser (as /v2/scrape)",
)
firecrawl_jobs.add_job_routes(router, "v1")
