"""CacheMiddleware: reads the request's Cache-Control for the result cache and answers with
X-Cache (hit | partial | miss | bypass) when the request used it."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.cache.service import CacheTrace, current_trace


class CacheMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or getattr(scope["app"].state, "cache", None) is None:
            await self.app(scope, receive, send)
            return
        cache_control = ""
        for name, value in scope["headers"]:
            if name == b"cache-control":
                cache_control += value.decode("latin-1") + ","
        trace = CacheTrace.from_cache_control(cache_control, scope)
        token = current_trace.set(trace)

        async def send_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = trace.header()
                if value is not None and int(message["status"]) < 400:
                    MutableHeaders(scope=message)["X-Cache"] = value
            await send(message)

        try:
            await self.app(scope, receive, send_header)
        finally:
            current_trace.reset(token)
