"""POST /api/crawl."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import ErrorEnvelope
from frontend.crawl.schemas import CrawlRequest, CrawlResponse
from frontend.crawl.service import CrawlService

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


@router.post(
    "/crawl",
    response_model=CrawlResponse,
    responses=CRAWL_RESPONSES,
    summary="Load a page in a real browser; return its clean text",
)
async def crawl(body: CrawlRequest, request: Request, service: CrawlServiceDep) -> Response:
    started = time.perf_counter()
    result = await service.crawl(body)
    payload = {"request_id": request_id_of(request), **result}
    payload["fetch_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(payload)
