"""The Host header check against DNS rebinding (as Ollama's CVE-2024-28224 fix), pure ASGI.

A hostile page can point its own name at 127.0.0.1 and drive a loopback API from the user's
browser; the browser then still sends the hostile name as Host. Rebinding needs a name the
attacker's DNS answers, so IP literals are safe to accept where the server is reachable by IP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from frontend.core.errors import INVALID_REQUEST, envelope
from frontend.core.probes import PROBE_PATHS  # probes send a pod IP or service name as Host

_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
# host, optional :port; IPv6 literals in brackets
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::\d{1,5})?$")


class HostPolicy:
    """Which Host values this server answers to."""

    def __init__(self, bind_host: str, allowed_hosts: Iterable[str]) -> None:
        entries = set(allowed_hosts)  # normalised by the config's validator
        self.disabled = "*" in entries
        bind = bind_host.strip().strip("[]").lower()
        self.any_ip = bind in _WILDCARD_BINDS
        with contextlib.suppress(ValueError):  # a name (localhost, nas.lan) stays as it is
            bind = str(ipaddress.ip_address(bind))
        self.names = {e for e in entries if not e.startswith("*.")} | {"localhost", bind}
        self.suffixes = (*(e[1:] for e in entries if e.startswith("*.")), ".localhost")

    def allows(self, header: str) -> bool:
        if self.disabled:
            return True
        match = _HOST_HEADER.fullmatch(header)
        if match is None:
            return False
        host = match.group(1).strip("[]").lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.names or host.endswith(self.suffixes)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return self.any_ip or address.is_loopback or str(address) in self.names


class HostCheckMiddleware:
    """400 INVALID_REQUEST for a Host this server was not told it is called by."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.policy.disabled or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        # No Host at all (HTTP/1.0 tools): browsers always send one, so it is no rebinding.
        if host is None or self.policy.allows(host.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        shown = host.decode("latin-1")[:100]
        response = envelope(
            400,
            INVALID_REQUEST,
            f"Host '{shown}' is not an allowed name for this server: add it to "
            "server.allowed_hosts (DNS-rebinding protection)",
            str(scope.get("state", {}).get("request_id", "")),
            {"host": shown},
        )
        await response(scope, receive, send)
