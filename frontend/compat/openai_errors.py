"""Errors under /v1/ in OpenAI's shape, whoever answered them (routes, auth, rate limits,
body limit, Host check): {"error": {"message", "type", "param", "code", "request_id"}}.

OpenAI SDKs read `error.message` and `error.type`; our envelope's `code` becomes OpenAI's
lower-case `code` and the first invalid field its `param`. A pure ASGI middleware, outermost,
so every refusal is rewritten once, in one place.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.core.openapi import use_error_shape

PREFIX = "/v1/"
# Firecrawl's v1 routes live under /v1/ too; their errors have Firecrawl's shape instead
# (compat.firecrawl_errors).
FIRECRAWL_V1 = ("/v1/scrape", "/v1/map", "/v1/crawl", "/v1/batch/")


def is_openai_path(path: str) -> bool:
    return path.startswith(PREFIX) and not path.startswith(FIRECRAWL_V1)


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def envelope_error(body: bytes) -> dict[str, Any] | None:
    """The `error` object of our envelope in a response body; None for any other body."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return error if isinstance(error, dict) and "message" in error else None


def openai_error(status: int, body: bytes) -> bytes:
    """Our envelope as OpenAI's; anything else is left as it is."""
    error = envelope_error(body)
    if error is None:
        return body
    details: dict[str, Any] = error.get("details") or {}
    problems = details.get("errors") or []
    param = problems[0].get("field") if problems and isinstance(problems[0], dict) else None
    if param is None and "model_id" in details:
        param = "model"
    shaped = {
        "message": error.get("message", ""),
        "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": str(error.get("code", "")).lower() or None,
        "request_id": error.get("request_id", ""),
    }
    return orjson.dumps({"error": shaped})


class ErrorRewriteMiddleware:
    """Answers the error responses (status >= 400) of the paths `applies` to in another API's
    error shape: `reshape(status, body)` returns the status and body to send instead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies(self, path: str) -> bool:
        raise NotImplementedError

    def reshape(self, status: int, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the whole (small) error body is here
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status, body = self.reshape(start["status"], b"".join(chunks))
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


class OpenAIErrorMiddleware(ErrorRewriteMiddleware):
    def applies(self, path: str) -> bool:
        return is_openai_path(path)

    def reshape(self, status: int, body: bytes) -> tuple[int, bytes]:
        return status, openai_error(status, body)


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None
    request_id: str


class OpenAIErrorEnvelope(BaseModel):
    error: OpenAIErrorBody


def document_openai_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Point the error responses of /v1/ operations at OpenAI's shape in the OpenAPI."""
    return use_error_shape(schema, OpenAIErrorEnvelope, is_openai_path)
