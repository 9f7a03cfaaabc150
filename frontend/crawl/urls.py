"""The one URL parser of every address decision (crawl, map, robots and sitemap fetches,
webhooks, the crawl proxy) and URL normalization for a site crawl's frontier and scope rules.

URLs are read as a browser reads them: the WHATWG URL Standard, parsed by ada (`ada-url`, the
parser Node.js uses). Python's urlsplit reads some spellings differently from Chromium:
`http://127.0.0.1:1\\@127.0.0.2:2/` is host 127.0.0.2 to urlsplit and 127.0.0.1 to a browser
(a backslash ends the authority), `http://2130706433/` and `http://%31%32%37.1/` are
127.0.0.1 to a browser. A check must see the host the request will go to, so every check
uses `parse_url`, and what is fetched afterwards is its `href` (the browser's own spelling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlunsplit

import ada_url

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only track the visitor: dropped, so links from campaigns and feeds
# do not crawl the same page twice.
TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|gclid|dclid|fbclid|msclkid|yclid|mc_cid|mc_eid|_ga|_gl|igshid|ref_src)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class WebUrl:
    """A URL as the browser reads it."""

    href: str  # the WHATWG serialization: what a browser requests for the input
    scheme: str  # lower-case, without ':'
    host: str  # lower-case; IPv4 dotted, IPv6 without brackets; no trailing dot; '' if none
    port: int | None  # an explicit port other than the scheme's default
    path: str  # '/' at least for http(s)
    query: str  # without '?'

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS.get(self.scheme, 0)

    @property
    def netloc(self) -> str:
        """host[:port] with IPv6 in brackets (no user info)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def parse_url(url: str) -> WebUrl | None:
    """`url` as a browser reads it (tabs and newlines dropped, backslashes as slashes, numeric
    and percent-encoded IPv4 hosts decoded, IDNA applied), or None when a browser would refuse
    it (a host with a space or '%zz', a port above 65535, an unclosed '[', no scheme...)."""
    if not isinstance(url, str) or "\x00" in url:
        return None
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return None
    host = parsed.hostname.lower()
    host = host[1:-1] if host.startswith("[") else host.rstrip(".")
    return WebUrl(
        href=parsed.href,
        scheme=parsed.protocol.rstrip(":").lower(),
        host=host,
        port=int(parsed.port) if parsed.port else None,
        path=parsed.pathname,
        query=parsed.search[1:],
    )


def normalize(url: str, drop_query: bool = False) -> str | None:
    """The crawl's key for a URL: as the browser reads it, with the user info, the default
    port and the fragment dropped, tracking parameters removed and the rest sorted (or the
    whole query dropped). None for what is not an http(s) URL with a host."""
    parsed = parse_url(url)
    if parsed is None or parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        return None
    query = ""
    if not drop_query and parsed.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parsed.query, keep_blank_values=True)
            if not TRACKING_PARAMS.match(k)
        ]
        query = urlencode(sorted(pairs))
    return urlunsplit((parsed.scheme, parsed.netloc, parsed.path or "/", query, ""))


def host_of(url: str) -> str:
    parsed = parse_url(url)
    return parsed.host if parsed is not None else ""


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
    parsed = parse_url(url)
    if parsed is None:
        return "/"
    return (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
