"""CORS for web pages that call the API from a browser (server.cors_allow_origins): Starlette's
CORSMiddleware, with a refused preflight answered in the error envelope."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from frontend.core.errors import INVALID_REQUEST, envelope

# Response headers a browser page may read: the request id, rate limits, cache, job location.
EXPOSED = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Cache",
    "Location",
]


class EnvelopeCORSMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code == 400:  # Starlette's text: what it refused
                    reason = bytes(response.body).decode(errors="replace")[:200]
                    request_id = str(scope.get("state", {}).get("request_id", ""))
                    message = f"CORS preflight refused: {reason}"
                    response = envelope(400, INVALID_REQUEST, message, request_id)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def cors_middleware(origins: list[str]) -> list[Middleware]:
    """The middleware for the configured origins (none: no CORS at all). Keys go in the
    Authorization header, not cookies, so credentials are not allowed."""
    if not origins:
        return []
    return [
        Middleware(
            EnvelopeCORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED,
            max_age=600,
        )
    ]
