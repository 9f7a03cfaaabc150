"""OpenAPI request bodies for the image endpoints (they read multipart or JSON themselves)."""

from __future__ import annotations

from typing import Any


def image_request_body(extra_fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    json_schema = {
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": "base64 image, `data:` prefix optional"},
            "batch": {
                "type": "array",
                "items": {"type": "string"},
                "description": "several base64 images (instead of `image`)",
            },
            **extra_fields,
        },
    }
    form_schema = {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": "one or several image files",
            },
            **extra_fields,
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": form_schema},
            },
        }
    }
