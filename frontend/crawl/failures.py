"""How a failed crawl reaches the client: one mapping from a refusal, a proxy event or a
Chromium net error to an API error."""

from __future__ import annotations

from typing import Any

from frontend.core.errors import (
    CRAWL_DNS_FAILED,
    CRAWL_FAILED,
    CRAWL_TIMEOUT,
    CRAWL_TLS_FAILED,
    CRAWL_UNREACHABLE,
    APIError,
    InvalidRequest,
)
from frontend.crawl.policy import Refusal
from frontend.crawl.urls import parse_url


def refused(refusal: Refusal) -> APIError:
    return InvalidRequest(
        f"crawl target refused: {refusal.message}",
        {"rule": refusal.rule, "host": refusal.host[:255]},
    )


def net_failure(kind: str, host: str, net_error: str | None = None) -> APIError:
    """One mapping from a failed fetch (proxy event kind or Chromium net error) to an error."""
    details: dict[str, Any] = {"host": host[:255]}
    if net_error:
        details["net_error"] = net_error
    if kind == "dns":
        return APIError(502, CRAWL_DNS_FAILED, f"cannot resolve host {host}", details)
    if kind == "unreachable":
        return APIError(502, CRAWL_UNREACHABLE, f"cannot connect to {host}", details)
    if kind == "tls":
        return APIError(502, CRAWL_TLS_FAILED, f"TLS failed for {host}", details)
    if kind == "timeout":
        return APIError(504, CRAWL_TIMEOUT, f"{host} did not answer in time", details)
    if kind == "limit":
        return APIError(502, CRAWL_FAILED, "the crawl's transfer limit was reached", details)
    return APIError(502, CRAWL_FAILED, f"the page at {host} could not be loaded", details)


def classify_net_error(net_error: str) -> str:
    if net_error.startswith(("ERR_NAME_NOT_RESOLVED", "ERR_NAME_RESOLUTION_FAILED")):
        return "dns"
    if net_error.startswith(("ERR_CERT_", "ERR_SSL_", "ERR_BAD_SSL")):
        return "tls"
    if net_error in ("ERR_TIMED_OUT", "ERR_CONNECTION_TIMED_OUT"):
        return "timeout"
    if net_error in (
        "ERR_CONNECTION_REFUSED",
        "ERR_CONNECTION_RESET",
        "ERR_CONNECTION_CLOSED",
        "ERR_CONNECTION_FAILED",
        "ERR_ADDRESS_UNREACHABLE",
        "ERR_TUNNEL_CONNECTION_FAILED",
        "ERR_EMPTY_RESPONSE",
    ):
        return "unreachable"
    return "failed"


def host_port(url: str) -> tuple[str, int]:
    parsed = parse_url(url)
    return (parsed.host, parsed.effective_port) if parsed is not None else ("", 0)
