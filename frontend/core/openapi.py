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
    404: {"model": ErrorEnvelope, "description": "MODEL_NOT_FOUND: unknown or disabled model"},
    413: {
        "model": ErrorEnvelope,
        "description": "INVALID_REQUEST: body over limits.max_body_bytes",
    },
    500: {"model": ErrorEnvelope, "description": "INFERENCE_FAILED or INTERNAL_ERROR"},
    503: {
        "model": ErrorEnvelope,
        "description": "MODEL_LOAD_FAILED, SERVICE_UNAVAILABLE (Triton down) or RESOURCE_EXHAUSTED",
    },
}
