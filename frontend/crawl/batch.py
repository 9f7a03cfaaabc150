"""POST /api/crawl/batch: a list of URLs, each loaded as POST /api/crawl loads it, streamed as
NDJSON as they finish (as a site crawl streams, so a job stores the pages the same way)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from frontend.core.errors import InvalidRequest
from frontend.core.jsonbody import StrictJSONRoute
from frontend.crawl.routes import CrawlServiceDep, ndjson_line, ndjson_stream, stream_route
from frontend.crawl.schemas import CrawlRequest, PageOptions
from frontend.crawl.service import CrawlService
from frontend.crawl.site import load_page
from frontend.crawl.urls import normalize

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["crawl"])


class BatchCrawlRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"urls": ["https://example.com/", "https://example.org/"]}]
        },
    )

    urls: list[StrictStr] = Field(
        min_length=1,
        description="Pages to load (up to `crawl.max_batch_urls`), each under the address "
        "policy of POST /api/crawl.",
    )
    concurrency: StrictInt | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Pages loading at once (default `crawl.site_host_concurrency`, at most "
        "`crawl.max_concurrent`).",
    )
    page: PageOptions = Field(
        default_factory=PageOptions,
        description="How each page is loaded and returned: the options of POST /api/crawl.",
    )


BATCH_DESCRIPTION = """Loads each URL as `POST /api/crawl` does and streams NDJSON as they
finish (not in the order given):

- `{"type": "page", "page": {...}, "progress": {"done", "failed", "queued"}}`: the page as
  `POST /api/crawl` returns it plus `index` (its place in `urls`) and `source_url` (as given);
  a page that failed has `url`, `index`, `source_url`, `status_code` and `error` instead;
- `{"type": "summary", "status": "completed", "done", "failed", "queued", "elapsed_ms"}`, last.

Bad input (too many URLs, a URL that is not http(s), bad options) is refused before the stream
starts, with the error envelope; an address the policy refuses fails only its own page. As a
job (`Prefer: respond-async`), the pages are kept as the job's items (`GET
/api/jobs/{id}/items`) and the summary is its result."""


def check_batch(service: CrawlService, body: BatchCrawlRequest) -> None:
    limit = service.settings.max_batch_urls
    if len(body.urls) > limit:
        raise InvalidRequest(
            f"urls: at most {limit} URLs (crawl.max_batch_urls)",
            {"errors": [{"field": "urls", "message": "over crawl.max_batch_urls"}]},
        )
    for index, url in enumerate(body.urls):
        if len(url) > 4096 or normalize(url.strip()) is None:
            raise InvalidRequest(
                f"urls[{index}]: not an http(s) URL with a host",
                {"errors": [{"field": f"urls[{index}]", "message": "not an http(s) URL"}]},
            )
    service.check_options(body.page)


@stream_route(
    router, "/crawl/batch", "Load a list of pages; stream them as NDJSON", BATCH_DESCRIPTION
)
async def crawl_batch(body: BatchCrawlRequest, service: CrawlServiceDep) -> StreamingResponse:
    check_batch(service, body)
    settings = service.settings
    workers = min(body.concurrency or settings.site_host_concurrency, settings.max_concurrent)
    lines: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
    waiting = list(enumerate(body.urls))
    waiting.reverse()
    counts = {"done": 0, "failed": 0, "queued": len(waiting)}

    async def worker() -> None:
        while waiting:
            index, url = waiting.pop()
            page = CrawlRequest(url=url.strip(), **body.page.model_dump())
            result = await load_page(service, page)
            counts["queued"] -= 1
            if "error" in result:
                counts["failed"] += 1
                record = {"url": url, "index": index, "source_url": url, **result}
            else:
                counts["done"] += 1
                record = {**result, "index": index, "source_url": url}
            await lines.put(ndjson_line("page", {"page": record, "progress": dict(counts)}))

    async def run() -> dict[str, Any]:
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(workers)))
        elapsed = round((time.monotonic() - started) * 1000, 1)
        return {"status": "completed", **counts, "elapsed_ms": elapsed}

    return ndjson_stream(lines, run, "batch", lambda: dict(counts))
