"""Strict JSON request bodies: what cannot be text or a finite number is a 400, not a 500 later."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

NOT_JSON = "request body is not valid JSON"
_MAX_DEPTH = 200  # the permissive re-parse that names the field must not recurse without end


class InvalidBody(StarletteHTTPException):
    """A 400 raised while decoding the body (an HTTPException so FastAPI re-raises it as is)."""

    def __init__(self, message: str, field: str = "body", reason: str | None = None) -> None:
        super().__init__(400, message)
        self.details = {"errors": [{"field": field, "message": reason or message}]}


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _problem(value: Any, path: list[str], depth: int = 0) -> tuple[str, str] | None:
    """(field, reason) of the first value that strict JSON (and Triton) cannot carry."""
    if depth > _MAX_DEPTH:
        return None
    field = ".".join(path) or "body"
    if isinstance(value, str):
        return (field, "contains a lone UTF-16 surrogate") if _has_lone_surrogate(value) else None
    if isinstance(value, float) and not math.isfinite(value):
        return field, "must be a finite number (NaN, Infinity and overflowing numbers are not)"
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _problem(item, [*path, str(index)], depth + 1):
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            if _has_lone_surrogate(key):
                return field, "has a key with a lone UTF-16 surrogate"
            if found := _problem(item, [*path, key[:50]], depth + 1):
                return found
    return None


def decode_json(body: bytes) -> Any:
    """orjson's strict parse: UTF-8, no NaN/Infinity/overflowing numbers, no lone surrogates.

    When it refuses a body, a permissive re-parse finds the field to name in the error.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        lenient = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidBody(NOT_JSON, reason="not valid JSON (UTF-8)") from None
    found = _problem(lenient, [])
    if found is None:  # valid for Python but not for orjson: e.g. a UTF-16 encoded body
        raise InvalidBody(NOT_JSON, reason="not valid JSON (UTF-8)")
    field, reason = found
    raise InvalidBody(f"invalid request: {field}: {reason}", field, reason)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """Every API route parses its JSON body with decode_json (set as each router's route_class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
