"""The one error envelope (README: Errors), the named errors, and the handlers producing it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

INVALID_REQUEST = "INVALID_REQUEST"
MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
MODEL_LOAD_FAILED = "MODEL_LOAD_FAILED"
INFERENCE_FAILED = "INFERENCE_FAILED"
INFERENCE_TIMEOUT = "INFERENCE_TIMEOUT"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
INTERNAL_ERROR = "INTERNAL_ERROR"
# An uploaded file whose parsing passed the document sandbox's limits (config: documents)
DOCUMENT_TOO_COMPLEX = "DOCUMENT_TOO_COMPLEX"
# POST /api/crawl: the target page could not be fetched
CRAWL_DNS_FAILED = "CRAWL_DNS_FAILED"
CRAWL_UNREACHABLE = "CRAWL_UNREACHABLE"
CRAWL_TLS_FAILED = "CRAWL_TLS_FAILED"
CRAWL_TIMEOUT = "CRAWL_TIMEOUT"
CRAWL_FAILED = "CRAWL_FAILED"

_STATUS_CODES = {
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    409: CONFLICT,
    413: INVALID_REQUEST,
}
_MAX_VALIDATION_ITEMS = 10


class APIError(Exception):
    """An error that reaches the client as the documented envelope."""

    status: int = 500
    code: str = INTERNAL_ERROR
    doc = "the log has the details"  # what the status means, for the OpenAPI descriptions

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NamedError(APIError):
    """An APIError whose class fixes its status and code; callers give the message. A named
    error's docstring is its `doc`: what the status means, in the OpenAPI descriptions."""

    def __init_subclass__(
        cls, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = cls.status if status is None else status
        cls.code = cls.code if code is None else code
        cls.doc = " ".join(cls.__doc__.split()) if cls.__doc__ else cls.doc

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(type(self).status, type(self).code, message, details)


class InvalidRequest(NamedError, status=400, code=INVALID_REQUEST):
    """malformed or out-of-limit input"""


class Unauthorized(NamedError, status=401, code=UNAUTHORIZED):
    """missing or invalid API key"""


class Forbidden(NamedError, status=403, code=FORBIDDEN):
    """client address not allowed (security.ip_allowlist)"""


class ModelNotFound(NamedError, status=404, code=MODEL_NOT_FOUND):
    """unknown or disabled model"""


class NotFound(NamedError, status=404, code=NOT_FOUND):
    """no such item"""


class Conflict(NamedError, status=409, code=CONFLICT):
    """the id is taken, or a download of the model is running"""


class DocumentTooComplex(NamedError, status=413, code=DOCUMENT_TOO_COMPLEX):
    """a file too large or too complex to read within the document sandbox's limits"""


class RateLimited(NamedError, status=429, code=RATE_LIMIT_EXCEEDED):
    """too many requests (see Retry-After)"""


class ModelLoadFailed(NamedError, status=503, code=MODEL_LOAD_FAILED):
    """the model could not be loaded"""


class ResourceExhausted(NamedError, status=503, code=RESOURCE_EXHAUSTED):
    """no room for the work (concurrency, queue or memory limits); retry shortly"""


class Unavailable(NamedError, status=503, code=SERVICE_UNAVAILABLE):
    """Triton or the browser is down, or the service is shutting down"""


class InferenceTimedOut(NamedError, status=504, code=INFERENCE_TIMEOUT):
    """the model did not answer within triton.inference_timeout_seconds (it is restarted)"""


# Every named error, in status order: the OpenAPI descriptions are generated from these.
NAMED_ERRORS: tuple[type[NamedError], ...] = (
    InvalidRequest,
    Unauthorized,
    Forbidden,
    ModelNotFound,
    NotFound,
    Conflict,
    DocumentTooComplex,
    RateLimited,
    ModelLoadFailed,
    ResourceExhausted,
    Unavailable,
    InferenceTimedOut,
)


class BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body past the limit (an HTTPException so FastAPI re-raises it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def envelope(
    status: int,
    code: str,
    message: str,
    request_id: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details:
        body["details"] = details
    return json_response({"error": body}, status, headers)


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """Field paths and messages only: never the submitted values (they may be huge or secret)."""
    problems = []
    for item in exc.errors()[:_MAX_VALIDATION_ITEMS]:
        loc = [str(part) for part in item.get("loc", ()) if part != "body"]
        problems.append(
            {"field": ".".join(loc) or "body", "message": str(item.get("msg", ""))[:200]}
        )
    if problems and problems[0]["message"].startswith("JSON decode error"):
        return "request body is not valid JSON", problems[:1]
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    return f"invalid request: {first['field']}: {first['message']}", problems


def install_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return envelope(exc.status, exc.code, exc.message, request_id_of(request), exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, problems = _describe_validation(exc)
        return envelope(400, INVALID_REQUEST, message, request_id_of(request), {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, INVALID_REQUEST)
        message = str(exc.detail) if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path[:200]}"
        details = getattr(exc, "details", None)  # InvalidBody names the field
        return envelope(
            exc.status_code, code, message, request_id_of(request), details, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never echo exception text: it can carry paths, addresses or model internals.
        logger.exception("unhandled error in request %s", request_id_of(request))
        return envelope(500, INTERNAL_ERROR, "internal server error", request_id_of(request))
