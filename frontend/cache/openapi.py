"""The result cache in the OpenAPI document: the Cache-Control request header and the X-Cache
response header of every route whose results are cached."""

from __future__ import annotations

from typing import Any

CACHED_PATHS = (
    "/api/embed",
    "/api/embeddings",
    "/v1/embeddings",
    "/embeddings",
    "/embed",
    "/api/caption",
    "/api/ocr",
)
_CACHE_CONTROL = {
    "name": "Cache-Control",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "`no-cache`: compute afresh (the result is stored); `no-store`: compute "
    "and store nothing. Otherwise cached inputs are answered from the result cache.",
}
_X_CACHE = {
    "description": "The result cache (absent when it is off): `hit` every input (text, image) "
    "was cached, `partial` some, `miss` none, `bypass` Cache-Control skipped it",
    "schema": {"type": "string", "enum": ["hit", "partial", "miss", "bypass"]},
}


def document_cache(schema: dict[str, Any]) -> dict[str, Any]:
    for path in CACHED_PATHS:
        operation = schema.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "Cache-Control" for p in parameters):
            parameters.append(dict(_CACHE_CONTROL))
        ok = operation.get("responses", {}).get("200")
        if ok is not None:
            ok.setdefault("headers", {})["X-Cache"] = dict(_X_CACHE)
    return schema
