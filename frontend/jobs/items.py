"""A streaming job (a site crawl, a batch): its NDJSON lines into the store as they arrive.

Each `page` line's page is appended as an item and its progress (done / failed / queued)
written to the job; the `summary` line becomes the job's result. Items count toward
jobs.max_result_bytes: past it the crawl is stopped and the job fails with RESULT_TOO_LARGE
(the items so far stay readable). A cancelled job (or one whose lease another worker took)
stops the crawl at its next page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from frontend.jobs.store import JobStore

logger = logging.getLogger(__name__)
# Routes whose NDJSON answer a job consumes line by line (see jobs.dispatch).
STREAM_ENDPOINTS = ("/api/crawl/site", "/api/crawl/batch")
RESULT_TOO_LARGE = "RESULT_TOO_LARGE"


def progress_of(counts: dict[str, Any]) -> dict[str, int]:
    done, failed, queued = (int(counts.get(k) or 0) for k in ("done", "failed", "queued"))
    return {"done": done, "failed": failed, "queued": queued, "total": done + failed + queued}


class ItemSink:
    """The line consumer of one run of a streaming job (jobs.dispatch's `on_line`)."""

    def __init__(self, store: JobStore, job_id: str, worker: str, max_bytes: int) -> None:
        self.store = store
        self.job_id = job_id
        self.worker = worker
        self.max_bytes = max_bytes
        self.stop = asyncio.Event()  # set: dispatch disconnects, the route stops crawling
        self.summary: bytes | None = None
        self.error: dict[str, Any] | None = None
        self.progress: dict[str, int] = progress_of({})
        self.bytes = 0

    async def __call__(self, line: bytes) -> None:
        if self.stop.is_set():
            return
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            logger.warning("job %s: a line that is not JSON was skipped", self.job_id)
            return
        kind = record.get("type")
        if kind == "page":
            item = orjson.dumps(record.get("page"))
            self.bytes += len(item)
            if self.bytes > self.max_bytes:
                self.error = {
                    "code": RESULT_TOO_LARGE,
                    "message": f"the pages came to more than jobs.max_result_bytes "
                    f"({self.max_bytes} bytes); the crawl was stopped",
                }
                self.stop.set()
                return
            self.progress = progress_of(record.get("progress") or {})
            if not await asyncio.to_thread(self._write, item, self.progress):
                self.stop.set()  # cancelled, or the lease went to another worker
        elif kind == "summary":
            summary = {k: v for k, v in record.items() if k != "type"}
            self.summary = orjson.dumps(summary)
            self.progress = progress_of(summary)
        elif kind == "error":
            self.error = record.get("error") or {"code": "INTERNAL_ERROR", "message": "failed"}

    def _write(self, item: bytes, progress: dict[str, int]) -> bool:
        job = self.store.get(self.job_id)
        if job is None or job.status != "running" or job.worker != self.worker:
            return False
        self.store.append_item(self.job_id, item)
        self.store.patch(self.job_id, {"progress": progress})
        return True

    def outcome(self, status: int, content: bytes) -> tuple[int, bytes]:
        """(status, body) as a buffered call would have answered: the summary or an error."""
        if not 200 <= status < 300:
            return status, content  # refused before the stream started: the error envelope
        if self.error is not None:
            code = 413 if self.error.get("code") == RESULT_TOO_LARGE else 500
            error = {**self.error, "request_id": f"job-{self.job_id}"}
            return code, orjson.dumps({"error": error})
        if self.summary is None:
            error = {
                "code": "INTERNAL_ERROR",
                "message": "the stream ended without a summary",
                "request_id": f"job-{self.job_id}",
            }
            return 500, orjson.dumps({"error": error})
        return status, self.summary
