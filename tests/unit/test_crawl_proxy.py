"""The filtering proxy on real loopback sockets: forwarding, refusals, limits, closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from frontend.crawl.policy import CrawlPolicy, system_resolver
from frontend.crawl.proxy import MARKER_HEADER, ProxySession

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _upstream(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _session(policy: CrawlPolicy, max_bytes: int = 10**9) -> ProxySession:
    session = ProxySession(policy, system_resolver, max_bytes, 5)
    await session.start()
    return session


async def _exchange(session: ProxySession, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", session.port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def test_forwards_in_origin_form_one_request_per_connection() -> None:
    async def run() -> tuple[bytes, bytes]:
        seen: list[bytes] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                + MARKER_HEADER.encode()
                + b": refused\r\n\r\nok"
            )
            await writer.drain()
            writer.close()

        server, port = await _upstream(handler)
        session = await _session(CrawlPolicy(True, []))
        request = (
            f"GET http://127.0.0.1:{port}/p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        answer = await _exchange(session, request)
        await session.close()
        server.close()
        return seen[0], answer

    upstream_saw, answer = asyncio.run(run())
    assert upstream_saw.startswith(b"GET /p?q=1 HTTP/1.1\r\n")
    assert b"Connection: close\r\n" in upstream_saw
    assert b"keep-alive" not in upstream_saw.lower()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Proxy-Connection: close" in answer and answer.endswith(b"ok")
    assert MARKER_HEADER.encode() not in answer.lower()  # a site cannot fake a refusal


def test_refuses_loopback_tunnel_without_connecting() -> None:
    async def run() -> tuple[bytes, ProxySession, int]:
        hits = 0

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal hits
            hits += 1
            writer.close()

        server, port = await _upstream(handler)
        session = await _session(CrawlPolicy(False, []))
        answer = await _exchange(session, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        await asyncio.sleep(0.1)
        await session.close()
        server.close()
        return answer, session, hits

    answer, session, hits = asyncio.run(run())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert f"{MARKER_HEADER}: refused".encode() in answer
    assert [(e.kind, e.host, e.refusal and e.refusal.rule) for e in session.events] == [
        ("refused", "127.0.0.1", "loopback")
    ]
    assert hits == 0


def test_rejects_requests_that_are_not_proxy_requests() -> None:
    async def run() -> bytes:
        session = await _session(CrawlPolicy(True, []))
        answer = await _exchange(session, b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n")
        await session.close()
        return answer

    assert asyncio.run(run()).startswith(b"HTTP/1.1 400 ")


def test_transfer_limit_cuts_the_download() -> None:
    async def run() -> tuple[int, ProxySession]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n")
            for _ in range(200):
                writer.write(b"x" * 10_000)
                await writer.drain()
            writer.close()

        server, port = await _upstream(handler)
        session = await _session(CrawlPolicy(True, []), max_bytes=100_000)
        answer = await _exchange(session, f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\n\r\n".encode())
        await session.close()
        server.close()
        return len(answer), session

    received, session = asyncio.run(run())
    assert received < 200_000
    assert session.limit_hit


def test_close_ends_open_tunnels() -> None:
    async def run() -> bytes:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        server, port = await _upstream(handler)
        session = await _session(CrawlPolicy(True, []))
        reader, writer = await asyncio.open_connection("127.0.0.1", session.port)
        writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        established = await reader.readuntil(b"\r\n\r\n")
        await session.close()
        rest = await asyncio.wait_for(reader.read(), 5)  # EOF, not a hang
        writer.close()
        server.close()
        return established + rest

    assert asyncio.run(run()) == b"HTTP/1.1 200 Connection established\r\n\r\n"
