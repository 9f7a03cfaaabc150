"""The async form of each job endpoint in the OpenAPI schema: its 202, Prefer and ?async."""

from __future__ import annotations

from typing import Any

from frontend.jobs.service import JOB_ENDPOINTS

_PARAMETERS = [
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "examples": ["respond-async"]},
        "description": "`respond-async`: run as a job; 202 with the job and its Location",
    },
    {
        "name": "async",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
        "description": "`true`: as `Prefer: respond-async`",
    },
    {
        "name": "X-Homelab-Webhook",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 2048},
        "description": "With a job: POST the finished job to this URL, signed (docs: Jobs)",
    },
]


def document_async(schema: dict[str, Any]) -> dict[str, Any]:
    for path in JOB_ENDPOINTS:
        operation = schema.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        known = {p["name"] for p in operation.get("parameters", [])}
        operation.setdefault("parameters", []).extend(
            p for p in _PARAMETERS if p["name"] not in known
        )
        operation["responses"].setdefault(
            "202",
            {
                "description": "Queued as a job (Prefer: respond-async or ?async=true); "
                "GET the Location for its status and result",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/JobView"}}
                },
            },
        )
    return schema
