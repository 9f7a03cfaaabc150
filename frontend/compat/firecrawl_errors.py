"""Errors under Firecrawl's paths (/v2/scrape, /v2/map, ..., and their v1 twins) in Firecrawl's
shape, whoever answered them (routes, auth, rate limits, body limit, Host check):
{"success": false, "error": message, "code", "details", "request_id"}.

`firecrawl-py` reads `error`, `details` and `code`: our CRAWL_DNS_FAILED and CRAWL_TLS_FAILED
become Firecrawl's own codes (the SDK raises DNSResolutionError / TLSError for them), and a
page that timed out answers 408 as Firecrawl does. A pure ASGI middleware, like the OpenAI one.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from frontend.compat.openai_errors import FIRECRAWL_V1, ErrorRewriteMiddleware, envelope_error
from frontend.core.openapi import use_error_shape

PREFIXES = ("/v2/scrape", "/v2/map", "/v2/crawl", "/v2/batch/", *FIRECRAWL_V1)
_CODES = {
    "CRAWL_DNS_FAILED": "SCRAPE_DNS_RESOLUTION_ERROR",
    "CRAWL_TLS_FAILED": "SCRAPE_SSL_ERROR",
    "CRAWL_TIMEOUT": "SCRAPE_TIMEOUT",
}
_STATUS = {"CRAWL_TIMEOUT": 408}


def is_firecrawl_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def firecrawl_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Our envelope as Firecrawl's (and the status Firecrawl gives); anything else as it is."""
    error = envelope_error(body)
    if error is None:
        return status, body
    code = str(error.get("code", ""))
    shaped: dict[str, Any] = {
        "success": False,
        "error": error.get("message", ""),
        "code": _CODES.get(code, code),
        "request_id": error.get("request_id", ""),
    }
    if error.get("details"):
        shaped["details"] = error["details"]
    return _STATUS.get(code, status), orjson.dumps(shaped)


class FirecrawlErrorMiddleware(ErrorRewriteMiddleware):
    def applies(self, path: str) -> bool:
        return is_firecrawl_path(path)

    def reshape(self, status: int, body: bytes) -> tuple[int, bytes]:
        return firecrawl_error(status, body)


class FirecrawlErrorEnvelope(BaseModel):
    success: bool
    error: str
    code: str
    request_id: str
    details: dict[str, Any] | None = None


def document_firecrawl_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Point the error responses of Firecrawl's operations at its shape in the OpenAPI."""
    for path, operations in schema.get("paths", {}).items():
        if is_firecrawl_path(path):
            for operation in operations.values():
                responses = operation.get("responses", {})
                if "504" in responses:  # a page timeout answers 408, as Firecrawl's
                    responses.setdefault("408", responses["504"])
    return use_error_shape(schema, FirecrawlErrorEnvelope, is_firecrawl_path)
