"""Webhooks: the crawl's address policy at creation and at each delivery, HMAC-SHA256
signatures, retries with exponential backoff, every attempt recorded on the job."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlunsplit

import httpx

from frontend.core.errors import InvalidRequest
from frontend.crawl.policy import CrawlPolicy, IPAddress, Resolver, TargetRefused
from frontend.crawl.urls import parse_url

SIGNATURE_HEADER = "X-Homelab-Signature"
MAX_URL_CHARS = 2048


class Undeliverable(Exception):
    """This process cannot deliver any more (it is stopping)."""


def sign(secret: str, body: bytes) -> str:
    """The X-Homelab-Signature value: sha256=<hex HMAC of the exact body bytes>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def check_target(policy: CrawlPolicy, resolver: Resolver, url: str) -> IPAddress:
    """The address to deliver to; InvalidRequest (400, details.rule) when the policy refuses."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequest(f"webhook: the URL is longer than {MAX_URL_CHARS} characters")
    try:
        host, port = policy.check_url(url)
        addresses = await asyncio.wait_for(policy.resolve(host, port, resolver), 10)
    except TargetRefused as exc:
        refusal = exc.refusal
        raise InvalidRequest(
            f"webhook: {refusal.message}", {"rule": refusal.rule, "field": "webhook"}
        ) from None
    except (OSError, TimeoutError):
        raise InvalidRequest(
            "webhook: the host name does not resolve", {"rule": "dns", "field": "webhook"}
        ) from None
    return addresses[0]


def _pinned(url: str, address: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with the checked address in place of the name (DNS cannot change between the
    check and the connection), the Host header and the TLS server name."""
    parsed = parse_url(url)  # the parser check_target used: the same host, port and path
    if parsed is None:
        raise InvalidRequest("webhook: the URL cannot be parsed")
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parsed.port is None else f"{literal}:{parsed.port}"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    pinned = urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, ""))
    return pinned, {"Host": host_header}, extensions


def deliver(
    url: str,
    body: bytes,
    secret: str,
    job_id: str,
    target: Callable[[], IPAddress],
    attempts: range,
    backoff: float,
    timeout: float,
    record: Callable[[dict[str, Any]], None],
    sleep: Callable[[float], object] = time.sleep,
) -> bool | None:
    """POST the body until a 2xx answer, trying the numbered `attempts` (a range: a resumed
    delivery goes on counting); True when delivered, False when every attempt failed, None
    when this process stopped before the end."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "X-Homelab-Job": job_id,
        "User-Agent": "homelab-ai-webhook",
    }
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as http:
        for attempt in attempts:
            started = time.time()
            entry: dict[str, Any] = {"attempt": attempt, "at": round(started, 3)}
            try:
                pinned, host, extensions = _pinned(url, target())  # re-checked every attempt
                response = http.post(
                    pinned, content=body, headers={**headers, **host}, extensions=extensions
                )
                entry["status_code"] = response.status_code
                ok = 200 <= response.status_code < 300
            except InvalidRequest as exc:
                entry["error"] = exc.message
                ok = False
            except Undeliverable:
                return None
            except (httpx.HTTPError, socket.gaierror, OSError) as exc:
                entry["error"] = type(exc).__name__
                ok = False
            entry["duration_ms"] = round((time.time() - started) * 1000, 1)
            record(entry)
            if ok:
                return True
            if attempt < attempts.stop - 1:
                sleep(backoff * 2 ** (attempt - 1))
    return False
