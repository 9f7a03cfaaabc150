"""Request and response shapes of /api/jobs (the OpenAPI schema; responses are built by hand)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.core.openapi import ErrorBody

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"endpoint": "/api/embed", "body": {"texts": ["hello", "world"]}}]
        },
    )

    endpoint: StrictStr = Field(
        max_length=100,
        description="The endpoint to run: /api/embed, /api/caption, /api/ocr, /api/crawl, "
        "/api/rerank, /api/crawl/site or /api/crawl/batch (these two stream their pages into "
        "the job's items)",
    )
    body: dict[str, Any] = Field(description="Its JSON request body, as the synchronous call")
    webhook: StrictStr | None = Field(
        default=None,
        max_length=2048,
        description="POSTed the finished job, signed (X-Homelab-Signature: sha256=<HMAC-SHA256 "
        "of the body>); the crawl's address policy applies to it",
    )


class Progress(BaseModel):
    done: int = Field(description="Parts done (a crawl job: pages loaded)")
    total: int = Field(description="Parts known (a crawl job: pages loaded, failed and waiting)")
    failed: int | None = Field(default=None, description="A crawl job: pages that failed")
    queued: int | None = Field(default=None, description="A crawl job: URLs waiting")


class Timings(BaseModel):
    queued_ms: float | None
    run_ms: float | None
    total_ms: float | None


class WebhookAttempt(BaseModel):
    attempt: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float


class Webhook(BaseModel):
    url: str
    attempts: list[WebhookAttempt]
    delivered: bool | None = Field(description="null until the job finishes")


class JobSummary(BaseModel):
    id: str
    status: JobStatus
    endpoint: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: Progress | None
    timings: Timings
    runs: int = Field(description="Times it started (a job cut by a crash runs again)")
    worker: str | None = Field(description="host:pid:id of the worker that ran it last")
    http_status: int | None = Field(description="The status the synchronous call answered")
    error: ErrorBody | None = Field(description="The error envelope's body, when failed")
    webhook: Webhook | None


class JobView(JobSummary):
    result: dict[str, Any] | None = Field(
        description="When succeeded: the body the synchronous call returns, exactly"
    )


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int


class JobItems(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="A crawl job's pages in the order they finished, as POST /api/crawl "
        "returns each (plus `depth`; a failed page has `url`, `status_code` and `error`)"
    )
    total: int = Field(description="Items stored so far")
    offset: int
    limit: int
    status: JobStatus
    next: str | None = Field(
        description="The next page's URL; while the job runs, it is there even when no more "
        "items are stored yet; null once the job has finished and this was the last page"
    )
