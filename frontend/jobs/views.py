"""A job as the API and its webhooks show it."""

from __future__ import annotations

from typing import Any

import orjson

from frontend.jobs.store import Job

WEBHOOK_FIELDS = ("url", "attempts", "delivered")


def view(job: Job, result: bytes | None, for_webhook: bool = False) -> dict[str, Any]:
    """A job as the API shows it; `result` is the synchronous call's JSON body, as is."""
    meta = job.meta
    started, finished = meta.get("started_at"), meta.get("finished_at")
    payload: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "endpoint": job.endpoint,
        "created_at": job.created_at,
        "started_at": started,
        "finished_at": finished,
        "progress": meta.get("progress"),
        "timings": {
            "queued_ms": _ms(started, job.created_at),
            "run_ms": _ms(finished, started),
            "total_ms": _ms(finished, job.created_at),
        },
        "runs": meta.get("runs", 0),
        "worker": job.worker or None,
        "http_status": meta.get("http_status"),
        "result": orjson.Fragment(result) if result else None,
        "error": meta.get("error") if job.status == "failed" else None,
    }
    hook = meta.get("webhook")
    if not for_webhook:
        payload["webhook"] = {k: hook.get(k) for k in WEBHOOK_FIELDS} if hook else None
    return payload


def summary(job: Job) -> dict[str, Any]:
    """A job in a listing: everything but the result."""
    shown = view(job, None)
    del shown["result"]
    return shown


def _ms(end: float | None, begin: float | None) -> float | None:
    if end is None or begin is None:
        return None
    return round((end - begin) * 1000, 1)
