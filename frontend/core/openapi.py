"""The OpenAPI error responses: routes name their own outcomes, the rest comes from the rules.

`complete_openapi` adds what the middleware can answer to each operation (the Host check's
400, the security checks' 401/403/429, the body limit's 413, the last-resort 500), so the
schema stays true when a route or a security rule changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from frontend.core.errors import (
    NAMED_ERRORS,
    APIError,
    InferenceTimedOut,
    ModelLoadFailed,
    ModelNotFound,
    ResourceExhausted,
    Unavailable,
)
from frontend.core.probes import PROBE_PATHS
from frontend.core.security import SecurityPolicy
from frontend.core.shutdown import DRAIN_SAFE_METHODS


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


# What the middleware and the last-resort handler answer, beyond the named errors.
_MORE: dict[int, str] = {
    400: "or a Host header that is not an allowed name (server.allowed_hosts)",
    413: "INVALID_REQUEST: body over limits.max_body_bytes",
    500: "INTERNAL_ERROR or INFERENCE_FAILED (the log has the details)",
    502: "the upstream failed",
    504: "or the upstream did not answer in time",
}


def _describe(status: int) -> str:
    named = "; ".join(f"{e.code}: {e.doc}" for e in NAMED_ERRORS if e.status == status)
    return ", ".join(part for part in (named, _MORE.get(status, "")) if part)


ERROR_DESCRIPTIONS: dict[int, str] = {
    status: _describe(status) for status in sorted({e.status for e in NAMED_ERRORS} | set(_MORE))
}
# Inference: the model may be unknown, fail to load, the server may be busy or down, or the
# model may hang.
INFERENCE_ERRORS = (
    ModelNotFound,
    ModelLoadFailed,
    ResourceExhausted,
    Unavailable,
    InferenceTimedOut,
)
_RATE_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": text}
    for name, text in (
        ("Retry-After", "seconds until a request is allowed again"),
        ("X-RateLimit-Limit", "requests allowed in the window"),
        ("X-RateLimit-Remaining", "requests left in the window"),
        ("X-RateLimit-Reset", "seconds until the window resets"),
    )
}
_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


def use_error_shape(
    schema: dict[str, Any], model: type[BaseModel], applies: Callable[[str], bool]
) -> dict[str, Any]:
    """Point the error responses of the paths `applies` accepts at a compat API's own error
    `model` (Ollama's, OpenAI's, Firecrawl's) instead of the envelope, as their routes answer."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    shape = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(shape.pop("$defs", {}))
    schemas[model.__name__] = shape
    theirs = {"$ref": f"#/components/schemas/{model.__name__}"}
    for path, operations in schema.get("paths", {}).items():
        if not applies(path):
            continue
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if media.get("schema", {}).get("$ref") == _ENVELOPE_REF["$ref"]:
                        media["schema"] = dict(theirs)
    return schema


def _is_fastapi_validation(response: dict[str, Any] | None) -> bool:
    """Whether this is the 422 FastAPI adds to every route with parameters (HTTPValidationError)."""
    if response is None:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def error_responses(
    *errors: type[APIError] | int, **descriptions: str
) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for a route's own errors: named error classes (or bare statuses);
    `descriptions` ('e503'=...) replace a status's generated text."""
    statuses = sorted({error if isinstance(error, int) else error.status for error in errors})
    return {
        status: {
            "model": ErrorEnvelope,
            "description": descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status]),
        }
        for status in statuses
    }


def _add(operation: dict[str, Any], status: int, **extra: Any) -> None:
    operation["responses"].setdefault(
        str(status),
        {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": _ENVELOPE_REF}},
            **extra,
        },
    )


def complete_openapi(schema: dict[str, Any], policy: SecurityPolicy) -> dict[str, Any]:
    """Add the middleware's statuses and the API-key scheme to every operation they apply to."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "ErrorEnvelope" not in schemas:  # no route named an error status of its own
        envelope = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(envelope.pop("$defs", {}))
        schemas["ErrorEnvelope"] = envelope
    # Validation errors are answered 400 INVALID_REQUEST (core.errors), never 422.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components.setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `homelab-ai keys create NAME` (when auth is on)",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            # FastAPI's own 422 goes; a 422 a route declares (Immich's /predict) stays
            if _is_fastapi_validation(operation["responses"].get("422")):
                operation["responses"].pop("422")
            if method.upper() not in DRAIN_SAFE_METHODS:
                _add(operation, 503)  # refused while the service drains (core.shutdown)
            if path not in PROBE_PATHS:  # the Host check (400) and the IP allowlist (403)
                _add(operation, 400)
                _add(operation, 403)
            _add(operation, 500)  # the last-resort handler (core.errors) answers any route
            if "requestBody" in operation:
                _add(operation, 413)
            if not policy.is_open(path, method):
                operation["security"] = [{"apiKey": []}]
                _add(operation, 401)
                _add(operation, 429, headers=_RATE_HEADERS)
    return schema
