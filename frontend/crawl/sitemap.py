"""Sitemaps of a site crawl: /sitemap.xml and robots.txt's Sitemap: lines, sitemap indexes
followed (bounded), plain-text sitemaps and .gz accepted. XML without entities or DTDs."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable

from lxml import etree

from frontend.crawl.fetch import Fetcher, RefusedFetch

logger = logging.getLogger(__name__)

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit (uncompressed)
_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "recover": True,
}


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of one sitemap document."""
    text = body.lstrip()
    if not text.startswith(b"<"):
        lines = (line.strip() for line in body.decode("utf-8", "replace").splitlines())
        return [line for line in lines if line.startswith(("http://", "https://"))], []
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    pages: list[str] = []
    children: list[str] = []
    for element in root.iter("{*}loc", "loc"):
        parent = element.getparent()
        kind = etree.QName(parent).localname if parent is not None else ""
        value = (element.text or "").strip()
        if not value:
            continue
        (children if kind == "sitemap" else pages).append(value)
    return pages, children


async def sitemap_urls(
    fetcher: Fetcher,
    roots: Iterable[str],
    max_urls: int,
    max_sitemaps: int,
    keep: Callable[[str], bool],
) -> list[str]:
    """Page URLs that `keep` accepts, from the sitemaps at `roots` and their children."""
    queue = deque(dict.fromkeys(roots))
    seen: set[str] = set(queue)
    found: dict[str, None] = {}
    fetched = 0
    while queue and fetched < max_sitemaps and len(found) < max_urls:
        url = queue.popleft()
        fetched += 1
        try:
            result = await fetcher.get(url, MAX_SITEMAP_BYTES)
        except RefusedFetch:
            continue
        if result is None or result.status != 200:
            continue
        pages, children = parse_sitemap(result.body)
        for page in pages:
            if len(found) >= max_urls:
                break
            if keep(page):
                found[page] = None
        for child in children:
            if child not in seen and keep(child):
                seen.add(child)
                queue.append(child)
    return list(found)
