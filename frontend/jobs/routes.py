"""/api/jobs: create, read, list and cancel jobs; every job is visible only to its owner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from frontend.core.errors import Conflict, NotFound, Unavailable, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import error_responses
from frontend.core.security import ANONYMOUS
from frontend.jobs.schemas import JobItems, JobList, JobRequest, JobStatus, JobView
from frontend.jobs.service import JobService
from frontend.jobs.store import FINISHED, Job
from frontend.jobs.views import summary, view

MAX_WAIT_SECONDS = 60
MAX_OFFSET = 2**31 - 1  # SQLite and Redis take offsets as 64-bit integers; no list is longer
WAIT_STEP_SECONDS = 0.02
router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["jobs"])
READ_ERRORS = error_responses(NotFound, 503)


async def get_jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise Unavailable("jobs are disabled (jobs.enabled: false)")
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


def owner_of(request: Request) -> str:
    return str(getattr(request.state, "owner", None) or ANONYMOUS)


def accepted(job: Job, headers: dict[str, str] | None = None) -> Response:
    """202 with the job and where to poll it."""
    location = f"/api/jobs/{job.id}"
    return json_response(view(job, None), 202, {"Location": location, **(headers or {})})


def _job_response(job: Job, result: bytes | None) -> Response:
    content = orjson.dumps(view(job, result))
    return Response(content, 200, media_type="application/json")


ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobView, "description": "Queued; poll the Location"}
}


@router.post(
    "/jobs",
    status_code=202,
    responses={**ACCEPTED, **error_responses(400, 503)},
    summary="Run an endpoint as a job: 202 at once, the result later",
)
async def create_job(body: JobRequest, request: Request, jobs: JobsDep) -> Response:
    job = await jobs.create(
        owner=owner_of(request),
        key_name=getattr(request.state, "api_key_name", None),
        endpoint=body.endpoint,
        content_type="application/json",
        query="",
        body=orjson.dumps(body.body),
        webhook=body.webhook,
    )
    return accepted(job)


@router.get(
    "/jobs",
    response_model=JobList,
    responses=error_responses(503),
    summary="This key's jobs, newest first",
)
async def list_jobs(
    request: Request,
    jobs: JobsDep,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    limit = min(limit, jobs.config.max_jobs_listed)
    found, total = await asyncio.to_thread(
        jobs.store.page, owner_of(request), status, limit, offset
    )
    payload: dict[str, Any] = {
        "jobs": [summary(job) for job in found],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
    return json_response(payload)


def _read_route(
    path: str, model: type[BaseModel], title: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a GET on one job (the job, its items): 404 for another owner's."""
    return router.get(path, response_model=model, responses=READ_ERRORS, summary=title)


Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the job to finish")
]


@_read_route(
    "/jobs/{job_id}", JobView, "A job: status, progress, timings, and the result or the error"
)
async def get_job(job_id: str, request: Request, jobs: JobsDep, wait: Wait = 0) -> Response:
    owner = owner_of(request)
    job = await jobs.owned(owner, job_id)
    deadline = time.monotonic() + wait
    # Long poll: one request instead of many (the store is read, cheaply, every 20 ms).
    while job.status not in FINISHED and time.monotonic() < deadline:
        await asyncio.sleep(WAIT_STEP_SECONDS)
        job = await jobs.owned(owner, job_id)
    result = (
        await asyncio.to_thread(jobs.store.result, job_id) if job.status == "succeeded" else None
    )
    return _job_response(job, result)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobView,
    responses=error_responses(NotFound, Conflict, 503),
    summary="Cancel a queued or running job (a running job's result is discarded)",
)
async def cancel_job(job_id: str, request: Request, jobs: JobsDep) -> Response:
    job = await jobs.cancel(owner_of(request), job_id)
    return _job_response(job, None)


def items_page(
    jobs: JobService, job: Job, offset: int, limit: int
) -> tuple[list[bytes], int, int | None]:
    """(items, total, the next offset or None when the job finished and this is the last)."""
    items = jobs.store.items(job.id, offset, limit)
    total = jobs.store.item_count(job.id)
    following = offset + len(items)
    if following >= total and job.status in FINISHED:
        return items, total, None
    return items, total, following


Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@_read_route(
    "/jobs/{job_id}/items",
    JobItems,
    "A crawl job's pages, as they finish (paginated; `next` while more may come)",
)
async def job_items(
    job_id: str, request: Request, jobs: JobsDep, offset: Offset = 0, limit: Limit = 100
) -> Response:
    job = await jobs.owned(owner_of(request), job_id)
    limit = min(limit, jobs.config.items_page_size)
    items, total, following = await asyncio.to_thread(items_page, jobs, job, offset, limit)
    payload: dict[str, Any] = {
        "items": [orjson.Fragment(item) for item in items],
        "total": total,
        "offset": offset,
        "limit": limit,
        "status": job.status,
        "next": None
        if following is None
        else f"/api/jobs/{job.id}/items?offset={following}&limit={limit}",
    }
    return Response(orjson.dumps(payload), 200, media_type="application/json")
