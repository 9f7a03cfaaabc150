"""Run a job's request through the app's own routes, in-process, as the synchronous call would.

The scope is the one uvicorn would build for `POST <endpoint>` from loopback, plus the job
marker (security.JOB_SCOPE_KEY) carrying the owner: the security middleware skips the key check
(it ran when the job was created) and the drain lets a claimed job finish.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message

from frontend.core.security import JOB_SCOPE_KEY
from frontend.jobs.store import Job


async def dispatch(app: ASGIApp, job: Job, body: bytes) -> tuple[int, bytes]:
    """(status, response body) of POST job.endpoint with the stored body."""
    meta = job.meta
    headers = [
        (b"host", b"localhost"),
        (b"content-type", str(meta.get("content_type") or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", f"job-{job.id}".encode()),
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": job.endpoint,
        "raw_path": job.endpoint.encode(),
        "query_string": str(meta.get("query") or "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("localhost", 80),
        "state": {},
        JOB_SCOPE_KEY: {"id": job.id, "owner": job.owner, "key_name": meta.get("key_name")},
    }
    sent = False
    status = 500
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.get_running_loop().create_future()  # the "client" never disconnects
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)
