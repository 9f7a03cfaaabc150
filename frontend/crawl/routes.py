"""POST /api/crawl, /api/crawl/site (a site crawl streamed as NDJSON) and /api/crawl/map."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import ErrorEnvelope
from frontend.crawl.mapping import map_site
from frontend.crawl.schemas import CrawlRequest, CrawlResponse
from frontend.crawl.service import CrawlService
from frontend.crawl.site import Progress, SiteCrawl
from frontend.crawl.site_schemas import MapRequest, MapResponse, SiteCrawlRequest

logger = logging.getLogger(__name__)

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["crawl"])

CRAWL_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorEnvelope,
        "description": "INVALID_REQUEST: malformed input, or a target refused by the address "
        "policy (`details.rule`: scheme, loopback, private, link_local, multicast, reserved, "
        "unspecified, invalid_url)",
    },
    502: {
        "model": ErrorEnvelope,
        "description": "CRAWL_DNS_FAILED, CRAWL_UNREACHABLE, CRAWL_TLS_FAILED or CRAWL_FAILED",
    },
    503: {
        "model": ErrorEnvelope,
        "description": "RESOURCE_EXHAUSTED (crawl queue full) or SERVICE_UNAVAILABLE (browser)",
    },
    504: {"model": ErrorEnvelope, "description": "CRAWL_TIMEOUT: no response in time"},
}


async def get_crawl_service(request: Request) -> CrawlService:
    return request.app.state.crawl


CrawlServiceDep = Annotated[CrawlService, Depends(get_crawl_service)]


def crawl_route(
    router: APIRouter, path: str, model: type[BaseModel], summary: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a POST route answering `model`, the crawl errors documented (ours and
    the Firecrawl dialect's)."""
    return router.post(path, response_model=model, responses=CRAWL_RESPONSES, summary=summary)


@crawl_route(
    router, "/crawl", CrawlResponse, "Load a page in a real browser; return its clean text"
)
async def crawl(body: CrawlRequest, request: Request, service: CrawlServiceDep) -> Response:
    started = time.perf_counter()
    result = await service.crawl(body)
    payload = {"request_id": request_id_of(request), **result}
    payload["fetch_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(payload)


SITE_DESCRIPTION = """Crawls a site from `url` and streams the result as NDJSON
(`application/x-ndjson`), one JSON object per line, as the pages finish:

- `{"type": "page", "page": {...}, "progress": {"done", "failed", "queued"}}`: a loaded
  page, as `POST /api/crawl` returns it plus `depth`; a page that failed has `url`, `depth`,
  `status_code` and `error` (`code`, `message`, `details`) instead; `progress` counts the
  crawl so far (pages loaded, failed, URLs waiting);
- `{"type": "summary", "status": "completed"|"stopped", "stop_reason": "done"|"max_pages"|
  "error_rate"|"time_limit"|"cancelled", "done", "failed", "queued", "skipped_robots",
  "duplicates", "blocked_requests", "elapsed_ms"}`, last.

Bad input is refused before the stream starts, with the error envelope. As a job
(`Prefer: respond-async`), the pages are kept as the job's items as they finish
(`GET /api/jobs/{id}/items`), its progress is the last page line's and its result the summary."""


def ndjson_line(kind: str, payload: dict[str, Any]) -> bytes:
    """One line of a crawl stream: {"type": kind, ...payload}."""
    return orjson.dumps({"type": kind, **payload}) + b"\n"


def ndjson_stream(
    lines: asyncio.Queue[bytes | None],
    work: Callable[[], Awaitable[dict[str, Any]]],
    what: str,
    counts: Callable[[], dict[str, int]],
    stop: Callable[[], None] | None = None,
) -> StreamingResponse:
    """Stream `lines` as NDJSON while `work` runs: it puts the page lines and returns the
    summary line's payload. A failure becomes an error line with `counts()`; a client that
    goes away calls `stop` and cancels the work."""

    async def run() -> None:
        try:
            summary = await work()
            await lines.put(ndjson_line("summary", summary))
        except Exception:
            logger.exception("%s failed", what)
            error = {"code": "INTERNAL_ERROR", "message": f"the {what} failed"}
            await lines.put(ndjson_line("error", {"error": error, **counts()}))
        finally:
            await lines.put(None)

    async def stream() -> AsyncIterator[bytes]:
        task = asyncio.create_task(run())
        try:
            while (line := await lines.get()) is not None:
                yield line
        finally:  # the client went away: stop the work
            if stop is not None:
                stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return StreamingResponse(stream(), media_type="application/x-ndjson")


# The streaming crawl routes (site, batch): NDJSON lines, or an error envelope before them.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **CRAWL_RESPONSES,
    200: {"content": {"application/x-ndjson": {}}, "description": "NDJSON lines"},
}


def stream_route(
    router: APIRouter, path: str, summary: str, description: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a POST route streaming NDJSON lines (site, batch), with the errors
    answered before the first line documented."""
    return router.post(
        path,
        responses=STREAM_RESPONSES,
        response_class=StreamingResponse,
        summary=summary,
        description=description,
    )


@stream_route(
    router,
    "/crawl/site",
    "Crawl a site (links, sitemaps, robots.txt); stream its pages as NDJSON",
    SITE_DESCRIPTION,
)
async def crawl_site(body: SiteCrawlRequest, service: CrawlServiceDep) -> StreamingResponse:
    lines: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    async def on_page(page: dict[str, Any]) -> None:
        await lines.put(ndjson_line("page", {"page": page, "progress": _counts(site.progress)}))

    site = SiteCrawl(service, body, on_page)
    await site.prepare()  # refusals become the error envelope, before any line
    return ndjson_stream(lines, site.run, "site crawl", lambda: _counts(site.progress), site.cancel)


def _counts(progress: Progress) -> dict[str, int]:
    return {"done": progress.done, "failed": progress.failed, "queued": progress.queued}


@crawl_route(
    router, "/crawl/map", MapResponse, "List a site's URLs: its sitemaps and the start page's links"
)
async def crawl_map(body: MapRequest, request: Request, service: CrawlServiceDep) -> Response:
    links = await map_site(service, body)
    return json_response({"request_id": request_id_of(request), "url": body.url, "links": links})
