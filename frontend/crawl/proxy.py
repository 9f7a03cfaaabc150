"""The filtering forward proxy every browser request of a crawl goes through (SSRF guard).

Chromium sends each request of a context (navigations, redirect hops, subresources,
websockets) to its proxy by host name. The proxy resolves the host itself, checks every
address against the policy and connects to the checked address, so redirects, subresources
and DNS rebinding cannot reach a refused address. One listener per crawl: its refusals and
failures belong to that crawl."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from frontend.crawl.policy import CrawlPolicy, IPAddress, Refusal, Resolver, TargetRefused
from frontend.crawl.urls import parse_url, path_of

MAX_EVENTS = 256  # refusals and connection failures remembered per session
logger = logging.getLogger(__name__)

MARKER_HEADER = "x-homelab-crawl-proxy"
_HOP_HEADERS = (b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization")
_MARKER_PREFIX = MARKER_HEADER.encode() + b":"  # a site cannot fake the proxy's answers
_HEAD_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
# A CONNECT target is host:port and nothing else.
_NOT_AUTHORITY = re.compile(r"[@/\\?#\s]")


@dataclass(frozen=True)
class ProxyEvent:
    """A request the proxy did not pass on: kind is refused, dns, unreachable or limit."""

    kind: str
    host: str
    port: int
    refusal: Refusal | None = None


def split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    """'host:port', '[v6]:port' or 'host' -> (host without brackets, port), read by the URL
    parser of every other check. ValueError if bad (user info and paths included)."""
    if _NOT_AUTHORITY.search(authority):
        raise ValueError("not a host and port")
    parsed = parse_url(f"https://{authority}/")
    if parsed is None or not parsed.host:
        raise ValueError("no host")
    return parsed.host, parsed.port or default_port


class ProxySession:
    """A loopback listener for one crawl; close() ends it and every connection it opened."""

    def __init__(
        self,
        policy: CrawlPolicy,
        resolver: Resolver,
        max_bytes: int,
        connect_timeout: float,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.max_bytes = max_bytes
        self.connect_timeout = connect_timeout
        # Bounded: the browser-wide default session lives as long as the service.
        self.events: deque[ProxyEvent] = deque(maxlen=MAX_EVENTS)
        self.bytes_received = 0
        self.limit_hit = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def event_for(self, host: str, port: int) -> ProxyEvent | None:
        """The last failure recorded for host:port, if any."""
        host = host.lower().strip("[]")
        for event in reversed(self.events):
            if event.host == host and event.port == port:
                return event
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream = await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> asyncio.StreamWriter | None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.connect_timeout)
        request_line, _, header_block = head.partition(b"\r\n")
        method, target, _version = request_line.decode("latin-1").split(" ", 2)
        tunnel = method.upper() == "CONNECT"
        if tunnel:
            host, port = split_host_port(target, 443)
        else:
            parsed = parse_url(target)
            if parsed is None or parsed.scheme != "http" or not parsed.host:
                await _reply(writer, 400, "bad proxy request", "invalid")
                return None
            host, port = parsed.host, parsed.effective_port
            target = parsed.href  # what was checked is what is asked for
        host = host.lower()
        if self.limit_hit:
            await _reply(writer, 502, "crawl transfer limit reached", "limit")
            return None
        connected = await self._connect(host, port, writer)
        if connected is None:
            return None
        up_reader, up_writer = connected
        if tunnel:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            up_writer.write(_origin_form_head(method, target, header_block))
            await up_writer.drain()
            # One request per proxy connection: the browser must not reuse it for another host.
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            self._count(len(response_head))
            writer.write(_closing_head(response_head))
            await writer.drain()
        await self._relay(reader, writer, up_reader, up_writer)
        return up_writer

    async def _connect(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            addresses = await asyncio.wait_for(
                self.policy.resolve(host, port, self.resolver), self.connect_timeout
            )
        except TargetRefused as exc:
            self.events.append(ProxyEvent("refused", host, port, exc.refusal))
            logger.info("crawl proxy refused %s:%s (%s)", host, port, exc.refusal.rule)
            await _reply(writer, 403, exc.refusal.message, "refused")
            return None
        except (OSError, TimeoutError, ValueError):
            self.events.append(ProxyEvent("dns", host, port))
            await _reply(writer, 502, f"cannot resolve {host}", "dns")
            return None
        for address in addresses:
            try:
                return await asyncio.wait_for(_open(address, port), self.connect_timeout)
            except (OSError, TimeoutError):
                continue
        self.events.append(ProxyEvent("unreachable", host, port))
        await _reply(writer, 502, f"cannot connect to {host}:{port}", "unreachable")
        return None

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        outgoing = asyncio.ensure_future(_pipe(reader, up_writer, None))
        incoming = asyncio.ensure_future(_pipe(up_reader, writer, self._count))
        try:
            await asyncio.wait((outgoing, incoming), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (outgoing, incoming):
                task.cancel()
            await asyncio.gather(outgoing, incoming, return_exceptions=True)

    def _count(self, size: int) -> bool:
        """Adds received bytes; False once the crawl's transfer limit is passed."""
        self.bytes_received += size
        if self.bytes_received > self.max_bytes:
            self.limit_hit = True
        return not self.limit_hit


async def _open(address: IPAddress, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(str(address), port, limit=_HEAD_LIMIT)


async def _pipe(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    count: Callable[[int], bool] | None,
) -> None:
    while data := await source.read(_CHUNK):
        if count is not None and not count(len(data)):
            return
        sink.write(data)
        await sink.drain()
    with contextlib.suppress(OSError):
        if sink.can_write_eof():
            sink.write_eof()


def _origin_form_head(method: str, target: str, header_block: bytes) -> bytes:
    path = path_of(target)
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1")]
    lines += [line for line in header_block.split(b"\r\n") if line and not _is_hop(line)]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _closing_head(head: bytes) -> bytes:
    status_line, _, header_block = head.partition(b"\r\n")
    lines = [status_line]
    lines += [
        line
        for line in header_block.split(b"\r\n")
        if line and not _is_hop(line) and not line.lower().startswith(_MARKER_PREFIX)
    ]
    lines += [b"Connection: close", b"Proxy-Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _is_hop(line: bytes) -> bool:
    return line.split(b":", 1)[0].strip().lower() in _HOP_HEADERS


async def _reply(writer: asyncio.StreamWriter, status: int, message: str, kind: str) -> None:
    body = message.encode("utf-8", "replace")
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"{MARKER_HEADER}: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
