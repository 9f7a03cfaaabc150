"""OpenAPI descriptions of the error envelope, shared by every route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorEnvelope,
        "description": "INVALID_REQUEST: malformed or out-of-limit input",
    },
    401: {"model": ErrorEnvelope, "description": "UNAUTHORIZED: missing or invalid API key"},
    403: {"model": ErrorEnvelope, "description": "FORBIDDEN: client address not allowed"},
    404: {"model": ErrorEnvelope, "description": "MODEL_NOT_FOUND: unknown or disabled model"},
    413: {
        "model": ErrorEnvelope,
        "description": "INVALID_REQUEST: body over limits.max_body_bytes",
    },
    429: {"model": ErrorEnvelope, "description": "RATE_LIMIT_EXCEEDED (see Retry-After)"},
    500: {"model": ErrorEnvelope, "description": "INFERENCE_FAILED or INTERNAL_ERROR"},
    503: {
        "model": ErrorEnvelope,
        "description": "MODEL_LOAD_FAILED, SERVICE_UNAVAILABLE (Triton down) or RESOURCE_EXHAUSTED",
    },
}


def add_bearer_auth(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the API-key scheme and require it on /api/* (the docs get an Authorize button)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `homelab-ai keys create NAME` (when auth is on)",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/api/"):
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]
    return schema
