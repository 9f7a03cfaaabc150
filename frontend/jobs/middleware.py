"""`Prefer: respond-async` (RFC 7240) or `?async=true` on a job endpoint: 202 and a job.

Pure ASGI and innermost (after the security checks, so the caller's key owns the job): the body
is read whole, the job persisted and queued, and the route itself never runs in this request.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from frontend.core.errors import APIError, BodyTooLarge, envelope
from frontend.core.security import ANONYMOUS, JOB_SCOPE_KEY
from frontend.jobs.routes import accepted
from frontend.jobs.service import JOB_ENDPOINTS, JobService

WEBHOOK_HEADER = b"x-homelab-webhook"


def _wants_async(scope: Scope) -> tuple[bool, str]:
    """(asked for a job, the query string without `async`)."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    flag = next((v for k, v in pairs if k == "async"), None)
    rest = urlencode([(k, v) for k, v in pairs if k != "async"])
    if flag is not None and flag.lower() in ("true", "1", "yes"):
        return True, rest
    for name, value in scope["headers"]:
        if name == b"prefer" and b"respond-async" in value.lower():
            return True, rest
    return False, rest


class JobsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in JOB_ENDPOINTS
            or JOB_SCOPE_KEY in scope
        ):
            await self.app(scope, receive, send)
            return
        wanted, query = _wants_async(scope)
        jobs: JobService | None = getattr(scope["app"].state, "jobs", None)
        if not wanted or jobs is None:
            await self.app(scope, receive, send)
            return
        state = scope.get("state", {})
        request_id = str(state.get("request_id", ""))
        headers = dict(scope["headers"])
        try:
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away before the body arrived
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            hook = headers.get(WEBHOOK_HEADER)
            job = await jobs.create(
                owner=str(state.get("owner") or ANONYMOUS),
                key_name=state.get("api_key_name"),
                endpoint=scope["path"],
                content_type=headers.get(b"content-type", b"application/json").decode("latin-1"),
                query=query,
                body=b"".join(chunks),
                webhook=hook.decode("latin-1") if hook is not None else None,
            )
        except BodyTooLarge as exc:
            response = envelope(413, "INVALID_REQUEST", str(exc.detail), request_id)
        except APIError as exc:
            response = envelope(exc.status, exc.code, exc.message, request_id, exc.details)
        else:
            response = accepted(job, {"Preference-Applied": "respond-async"})
        await response(scope, receive, send)
