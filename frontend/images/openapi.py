"""OpenAPI request bodies for the image endpoints (they read multipart or JSON themselves)."""

from __future__ import annotations

from typing import Any


def image_request_body(
    extra_fields: dict[str, dict[str, Any]], documents: bool = False
) -> dict[str, Any]:
    what = "image, PDF or multi-page TIFF" if documents else "image"
    json_schema = {
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": f"base64 {what}, `data:` prefix optional"},
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
                "description": "one or several image files"
                + ("; a PDF or multi-page TIFF goes alone" if documents else ""),
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
