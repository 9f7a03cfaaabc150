"""One handler served at several API versions' paths (Cohere's /v1 and /v2 embed and rerank):
registered once per version, each with its own path, summary and operation id."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response

from frontend.core.openapi import INFERENCE_ERRORS, error_responses

Handler = Callable[..., Awaitable[Response]]


def add_versioned_routes(
    router: APIRouter, handler: Handler, response_model: Any, *routes: tuple[str, str, str, str]
) -> None:
    """POST `handler` at each (path, version, name, summary). The handler's last parameter,
    `version`, gets the route's version; the others are the route's own. `name` is what a
    function of its own would be called (it makes the operation id)."""
    signature = inspect.signature(handler)
    served = signature.replace(
        parameters=[p for name, p in signature.parameters.items() if name != "version"]
    )
    for path, version, name, summary in routes:
        endpoint = _at_version(handler, version)
        endpoint.__signature__ = served  # type: ignore[attr-defined]
        endpoint.__wrapped__ = handler  # type: ignore[attr-defined]  # FastAPI reads its globals
        endpoint.__name__ = endpoint.__qualname__ = name
        responses = error_responses(*INFERENCE_ERRORS)
        router.post(path, response_model=response_model, responses=responses, summary=summary)(
            endpoint
        )


def _at_version(handler: Handler, version: str) -> Handler:
    async def endpoint(**arguments: Any) -> Response:
        return await handler(**arguments, version=version)

    return endpoint
