"""URL normalization for a site crawl's frontier (dedup) and its scope rules."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only track the visitor: dropped, so links from campaigns and feeds
# do not crawl the same page twice.
TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|gclid|dclid|fbclid|msclkid|yclid|mc_cid|mc_eid|_ga|_gl|igshid|ref_src)$",
    re.IGNORECASE,
)


# Characters no host name has (the URL Standard's forbidden host code points, and controls):
# a browser would refuse such a URL, and a DNS lookup of it is not worth making. IPv6
# literals (with ':') are told apart by the caller.
FORBIDDEN_HOST = re.compile(r"[\x00-\x20\x7f #%/<>?@\[\\\]^|]")


def normalize(url: str, drop_query: bool = False) -> str | None:
    """The crawl's key for a URL: scheme and host lower-cased, default port and fragment
    dropped, an empty path as '/', tracking parameters removed and the rest sorted (or the
    whole query dropped). None for what is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or FORBIDDEN_HOST.search(host):
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = ""
    if not drop_query and parts.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not TRACKING_PARAMS.match(k)
        ]
        query = urlencode(sorted(pairs))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def registrable_base(host: str) -> str:
    """The start host without a leading 'www.': the base its subdomains hang from."""
    return host[4:] if host.startswith("www.") else host


def in_scope(host: str, start_host: str, subdomains: bool, external: bool) -> bool:
    """Same host (www. and bare name count as one), its subdomains when allowed, or any."""
    if external:
        return True
    base = registrable_base(start_host)
    if registrable_base(host) == base:
        return True
    return subdomains and host.endswith("." + base)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
