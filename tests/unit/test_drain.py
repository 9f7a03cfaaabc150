"""The drain's end: requests still running get the documented 503, never uvicorn's bare 500;
one already streaming its answer is left alone. A small Starlette app behind the real
DrainMiddleware, served in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from frontend.core.shutdown import Drain, DrainMiddleware


async def slow(request: Request) -> Response:
    await asyncio.sleep(30)
    return JSONResponse({"done": True})


async def swallows(request: Request) -> Response:
    """An endpoint that catches the cancellation and answers anyway: its answer is dropped."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(30)
    return JSONResponse({"late": True})


async def recancels(request: Request) -> Response:
    """As grpc.aio does: a call's cancellation comes out as a CancelledError of its own."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        raise asyncio.CancelledError() from None
    return JSONResponse({"done": True})


async def streams(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first "
        await asyncio.sleep(0.3)
        yield b"second"

    return StreamingResponse(chunks())


def app() -> Starlette:
    routes = [
        Route("/slow", slow, methods=["POST"]),
        Route("/swallows", swallows, methods=["POST"]),
        Route("/recancels", recancels, methods=["POST"]),
        Route("/streams", streams, methods=["POST"]),
    ]
    application = Starlette(routes=routes, middleware=[Middleware(DrainMiddleware)])
    application.state.drain = Drain()
    return application


async def until(condition: object, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.01)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


def test_running_requests_get_503_at_the_drain_end_and_a_streaming_one_finishes() -> None:
    async def scenario() -> None:
        application = app()
        drain: Drain = application.state.drain
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            paths = ("/slow", "/swallows", "/recancels", "/streams")
            tasks = [asyncio.ensure_future(http.post(path)) for path in paths]
            await until(lambda: sum(r.started for r in drain.running) == 1)  # the stream's
            assert drain.in_flight == 4
            drain.begin()
            refused = await http.post("/slow")  # new work while draining
            assert drain.abort() == 3  # not the one streaming its answer
            await drain.wait_aborted(5)
            *cut_short, streamed = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        for response in [refused, *cut_short]:
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            error = response.json()["error"]
            assert error["code"] == "SERVICE_UNAVAILABLE" and "shutting down" in error["message"]
        assert streamed.status_code == 200 and streamed.content == b"first second"
        assert drain.in_flight == 0 and not drain.running
        assert drain.abort() == 0

    asyncio.run(scenario())
