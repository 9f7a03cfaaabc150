"""Plain GETs of a site crawl (robots.txt, sitemaps) through the same filtering proxy as the
browser, so every hop (redirects included) meets the address policy."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import httpx

from frontend.crawl.policy import CrawlPolicy, Resolver, TargetRefused
from frontend.crawl.proxy import MARKER_HEADER, ProxySession

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 10.0
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    body: bytes


class RefusedFetch(Exception):
    """The proxy refused the target or a redirect hop (address policy)."""


class Fetcher:
    """One proxy listener and one HTTP client for the plain fetches of one site crawl."""

    def __init__(
        self,
        policy: CrawlPolicy,
        resolver: Resolver,
        user_agent: str,
        verify_tls: bool,
        timeout: float = 15.0,
    ) -> None:
        self.policy = policy
        self.session = ProxySession(policy, resolver, 1 << 40, _CONNECT_TIMEOUT)
        self.user_agent = user_agent
        self.verify_tls = verify_tls
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        await self.session.start()
        self._client = httpx.AsyncClient(
            proxy=self.session.url,
            verify=self.verify_tls,
            follow_redirects=True,
            max_redirects=_MAX_REDIRECTS,
            timeout=self.timeout,
            headers={"User-Agent": self.user_agent},
            trust_env=False,  # never the environment's proxy: this one filters
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self.session.close()

    @property
    def refusals(self) -> int:
        return sum(1 for e in self.session.events if e.kind == "refused")

    async def get(self, url: str, max_bytes: int) -> Fetched | None:
        """The body (decompressed when gzip, at most `max_bytes`), or None when the fetch
        failed (DNS, connection, TLS, timeout, too many redirects). Raises RefusedFetch."""
        assert self._client is not None, "use `async with Fetcher(...)`"
        try:
            # httpx parses URLs its own way: it gets the browser's spelling that was checked.
            url = self.policy.parse(url).href
        except TargetRefused:
            raise RefusedFetch(url) from None
        try:
            async with self._client.stream("GET", url) as response:
                if MARKER_HEADER in response.headers:
                    if response.headers[MARKER_HEADER] == "refused":
                        raise RefusedFetch(url)
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        del body[max_bytes:]
                        break
                data = _gunzip(bytes(body), max_bytes)
                return Fetched(str(response.url), response.status_code, data)
        except httpx.ProxyError as exc:
            # A refused CONNECT (https) arrives as a proxy error, not a response.
            if "403" in str(exc):
                raise RefusedFetch(url) from None
            return None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            logger.debug("site crawl fetch of %s failed: %s", url, exc)
            return None


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """A gzip body (sitemap.xml.gz) decompressed up to `max_bytes` (a zip bomb stops there)."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(body, max_bytes)
    except zlib.error:
        return b""
