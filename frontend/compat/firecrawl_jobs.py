"""Firecrawl-compatible crawls and batch scrapes as jobs: POST /v2/crawl (a site crawl job,
POST /api/crawl/site) and POST /v2/batch/scrape (a batch job, POST /api/crawl/batch), their
status with the pages as Firecrawl documents (paginated: `next`), cancel and errors. A job
belongs to the API key that started it: another key gets 404, in Firecrawl's shape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from frontend.compat.firecrawl_schemas import (
    CrawlBody,
    IgnoredWebhook,
    ScrapeOptionsBody,
    to_document,
)
from frontend.core.errors import NotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import error_responses
from frontend.crawl.batch import BatchCrawlRequest, check_batch
from frontend.crawl.routes import CRAWL_RESPONSES, CrawlServiceDep
from frontend.crawl.schemas import PageOptions
from frontend.crawl.service import CrawlService
from frontend.crawl.site import SiteCrawl
from frontend.crawl.urls import normalize
from frontend.jobs.routes import MAX_OFFSET, JobsDep, items_page, owner_of
from frontend.jobs.service import JobService
from frontend.jobs.store import Job

router = APIRouter(route_class=StrictJSONRoute, prefix="/v2", tags=["firecrawl"])
F = TypeVar("F", bound=Callable[..., Any])
SITE, BATCH = "/api/crawl/site", "/api/crawl/batch"
_STATUS = {
    "queued": "scraping",
    "running": "scraping",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
_ERRORS_PAGE = 1_000


class Started(BaseModel):
    success: Literal[True]
    id: str
    url: str = Field(description="Where to poll its status")
    invalidURLs: list[str] | None = Field(default=None, description="Batches: URLs dropped")
    warning: str | None = Field(default=None, description="e.g. that a webhook is not sent")


WEBHOOK_WARNING = (
    "webhooks are not sent by this server: poll `url` (or use POST /api/jobs with `webhook`)"
)


class JobStatusResult(BaseModel):
    success: Literal[True]
    status: Literal["scraping", "completed", "failed", "cancelled"]
    total: int = Field(description="Pages known: loaded, failed and waiting")
    completed: int = Field(description="Pages loaded")
    creditsUsed: int
    expiresAt: str
    next: str | None = Field(description="The next page of `data`; null on the last one")
    data: list[dict[str, Any]] = Field(description="Firecrawl documents, as /v2/scrape's")


class Cancelled(BaseModel):
    success: Literal[True]
    status: Literal["cancelled"]


class ErrorsResult(BaseModel):
    errors: list[dict[str, Any]] = Field(description="[{id, timestamp, url, code, error}]")
    robotsBlocked: list[str]


STATUS_RESPONSES = error_responses(NotFound, 503)
CANCEL_RESPONSES = error_responses(NotFound, 409, 503)
START_RESPONSES = {**CRAWL_RESPONSES, **error_responses(503)}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _owner_key(request: Request) -> str | None:
    return getattr(request.state, "api_key_name", None)


async def _create(
    jobs: JobService, request: Request, endpoint: str, body: bytes, formats: set[str]
) -> Job:
    return await jobs.create(
        owner=owner_of(request),
        key_name=_owner_key(request),
        endpoint=endpoint,
        content_type="application/json",
        query="",
        body=body,
        webhook=None,
        extra={"firecrawl": {"formats": sorted(formats)}},
    )


def _started(
    request: Request, job_id: str, collection: str, webhook: object, **extra: Any
) -> Response:
    """{success, id, url (where to poll), ...}, with a warning when a webhook was asked for."""
    url = f"{_base(request)}/{collection}/{job_id}"
    started: dict[str, Any] = {"success": True, "id": job_id, "url": url, **extra}
    if webhook:
        started["warning"] = WEBHOOK_WARNING
    return json_response(started)


async def _noop(_: dict[str, Any]) -> None:
    return None


def start_route(router: APIRouter, path: str, summary: str) -> Callable[[F], F]:
    """The decorator of a route that starts a Firecrawl job (v1's and v2's)."""
    return router.post(path, response_model=Started, responses=START_RESPONSES, summary=summary)


class BatchBody(ScrapeOptionsBody):
    urls: list[StrictStr] = Field(min_length=1)
    webhook: IgnoredWebhook = None
    ignoreInvalidURLs: StrictBool = True
    maxConcurrency: StrictInt | None = Field(default=None, ge=1, le=64)


@dataclass(frozen=True)
class JobStart:
    """Starting a site crawl or a batch scrape job, for v1's routes and v2's alike: the refusals
    now (not in the job), then {success, id, url} with the `version`'s polling URL."""

    request: Request
    service: CrawlService
    jobs: JobService
    version: str

    async def site_crawl(self, body: CrawlBody) -> Response:
        site = body.site_request(self.service.settings.max_timeout_ms)
        await SiteCrawl(self.service, site, _noop).prepare()
        wanted, _ = body.scrapeOptions.formats_wanted()
        job = await _create(self.jobs, self.request, SITE, site.model_dump_json().encode(), wanted)
        return _started(self.request, job.id, f"{self.version}/crawl", body.webhook)

    async def batch_scrape(self, body: BatchBody) -> Response:
        urls, invalid = list(body.urls), []
        if body.ignoreInvalidURLs:
            invalid = [url for url in urls if len(url) > 4096 or normalize(url.strip()) is None]
            urls = [url for url in urls if url not in invalid]
        page = PageOptions(**body.page_fields(self.service.settings.max_timeout_ms))
        concurrency = body.maxConcurrency
        batch = BatchCrawlRequest(urls=urls or body.urls, concurrency=concurrency, page=page)
        check_batch(self.service, batch)
        wanted, _ = body.formats_wanted()
        job = await _create(
            self.jobs, self.request, BATCH, batch.model_dump_json().encode(), wanted
        )
        collection = f"{self.version}/batch/scrape"
        return _started(self.request, job.id, collection, body.webhook, invalidURLs=invalid)


@start_route(router, "/crawl", "Firecrawl v2 crawl: start a site crawl job")
async def start_crawl(
    body: CrawlBody, request: Request, service: CrawlServiceDep, jobs: JobsDep
) -> Response:
    return await JobStart(request, service, jobs, "v2").site_crawl(body)


@start_route(
    router, "/batch/scrape", "Firecrawl v2 batch scrape: start a job loading a list of pages"
)
async def start_batch(
    body: BatchBody, request: Request, service: CrawlServiceDep, jobs: JobsDep
) -> Response:
    return await JobStart(request, service, jobs, "v2").batch_scrape(body)


async def _job(jobs: JobService, request: Request, job_id: str, endpoint: str) -> Job:
    job = await jobs.owned(owner_of(request), job_id)
    if job.endpoint != endpoint or "firecrawl" not in job.meta:
        raise NotFound(f"no job '{job_id[:64]}'")
    return job


def _expires(jobs: JobService, job: Job) -> str:
    moment = float(job.meta.get("finished_at") or job.created_at) + jobs.config.result_ttl_seconds
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


async def _status(
    jobs: JobService, request: Request, job_id: str, endpoint: str, path: str, skip: int
) -> Response:
    job = await _job(jobs, request, job_id, endpoint)
    size = jobs.config.items_page_size
    items, _, following = await asyncio.to_thread(items_page, jobs, job, skip, size)
    wanted = set(job.meta["firecrawl"].get("formats") or ())
    data = []
    for number, raw in enumerate(items, start=skip):
        item = orjson.loads(raw)
        if "error" not in item:
            source = str(item.get("source_url") or item["url"])
            data.append(to_document(item, source, wanted, f"{job.id}-{number}"))
    progress = job.meta.get("progress") or {}
    done = int(progress.get("done") or 0) if "failed" in progress else 0
    payload = {
        "success": True,
        "status": _STATUS[job.status],
        "total": int(progress.get("total") or 0) if "failed" in progress else 0,
        "completed": done,
        "creditsUsed": done,
        "expiresAt": _expires(jobs, job),
        "next": None if following is None else f"{_base(request)}{path}?skip={following}",
        "data": data,
    }
    if following is None and path.startswith("/v1/"):
        del payload["next"]  # v1 clients page while `next` is present
    return json_response(payload)


async def _cancel(jobs: JobService, request: Request, job_id: str, endpoint: str) -> Response:
    await _job(jobs, request, job_id, endpoint)
    await jobs.cancel(owner_of(request), job_id)
    return json_response({"success": True, "status": "cancelled"})


async def _errors(jobs: JobService, request: Request, job_id: str, endpoint: str) -> Response:
    job = await _job(jobs, request, job_id, endpoint)
    errors: list[dict[str, Any]] = []
    offset = 0
    while True:
        items = await asyncio.to_thread(jobs.store.items, job.id, offset, _ERRORS_PAGE)
        for number, raw in enumerate(items, start=offset):
            item = orjson.loads(raw)
            if "error" in item:
                errors.append(
                    {
                        "id": f"{job.id}-{number}",
                        "timestamp": None,
                        "url": str(item.get("source_url") or item.get("url")),
                        "code": item["error"].get("code"),
                        "error": item["error"].get("message"),
                    }
                )
        if len(items) < _ERRORS_PAGE:
            break
        offset += len(items)
    return json_response({"errors": errors, "robotsBlocked": []})


Skip = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Documents to skip (as `next` says)")]


def add_job_routes(router: APIRouter, version: str) -> None:
    """Status, cancel and errors of crawl and batch-scrape jobs, under `version`'s prefix (v1's
    and v2's are the same routes)."""
    for kind, endpoint, name in (("crawl", SITE, "crawl"), ("batch/scrape", BATCH, "batch")):
        what, firecrawl = kind.replace("/", " "), f"Firecrawl {version}"
        status, cancel, errors = _job_endpoints(endpoint, name)
        for suffix, handler, method, model, responses, summary in (
            ("", status, "GET", JobStatusResult, STATUS_RESPONSES, f"{what} status and pages"),
            ("", cancel, "DELETE", Cancelled, CANCEL_RESPONSES, f"cancel a {what}"),
            ("/errors", errors, "GET", ErrorsResult, STATUS_RESPONSES, f"a {what}'s failed pages"),
        ):
            # "Firecrawl v2 crawl status and pages", "Firecrawl v2: cancel a crawl", ...
            joint = " " if handler is status else ": "
            router.add_api_route(
                f"/{kind}/{{job_id}}{suffix}",
                handler,
                methods=[method],
                response_model=model,
                responses=responses,
                summary=f"{firecrawl}{joint}{summary}",
            )


def _job_endpoints(endpoint: str, name: str) -> tuple[Any, Any, Any]:
    """The three handlers of one kind of job; named `crawl_status` etc. (the operation ids)."""

    async def status(job_id: str, request: Request, jobs: JobsDep, skip: Skip = 0) -> Response:
        return await _status(jobs, request, job_id, endpoint, request.url.path, skip)

    async def cancel(job_id: str, request: Request, jobs: JobsDep) -> Response:
        return await _cancel(jobs, request, job_id, endpoint)

    async def errors(job_id: str, request: Request, jobs: JobsDep) -> Response:
        return await _errors(jobs, request, job_id, endpoint)

    for handler in (status, cancel, errors):
        handler.__name__ = handler.__qualname__ = f"{name}_{handler.__name__}"
    return status, cancel, errors


add_job_routes(router, "v2")
