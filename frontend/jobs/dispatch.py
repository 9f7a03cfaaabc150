"""Run a job's request through the app's own routes, in-process, as the synchronous call would.

The scope is the one uvicorn would build for `POST <endpoint>` from loopback, plus the job
marker (security.JOB_SCOPE_KEY) carrying the owner: the security middleware skips the key check
(it ran when the job was created) and the drain lets a claimed job finish.

A streaming route (NDJSON: a site crawl) is consumed line by line, not buffered: each line goes
to `on_line` as it arrives, and `stop` (an event the line consumer sets: the job was cancelled,
its items are full) makes the "client" disconnect, which ends the route's stream (the crawl
stops after the pages in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message

from frontend.core.security import JOB_SCOPE_KEY
from frontend.jobs.store import Job

NDJSON = b"application/x-ndjson"
LineConsumer = Callable[[bytes], Awaitable[None]]


async def dispatch(
    app: ASGIApp,
    job: Job,
    body: bytes,
    on_line: LineConsumer | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[int, bytes]:
    """(status, response body) of POST job.endpoint with the stored body; with `on_line`, an
    NDJSON answer goes to it line by line and the body returned is empty."""
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
    streaming = False
    chunks: list[bytes] = []
    pending = b""
    stopped = stop or asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await stopped.wait()  # the "client" disconnects only when told to
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, streaming, pending
        if message["type"] == "http.response.start":
            status = int(message["status"])
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            streaming = on_line is not None and content_type.startswith(NDJSON)
        elif message["type"] == "http.response.body" and streaming and on_line is not None:
            pending += message.get("body", b"")
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    await on_line(line)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    if streaming and on_line is not None and pending.strip():
        await on_line(pending)
    return status, b"".join(chunks)
