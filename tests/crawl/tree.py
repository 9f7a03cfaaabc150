"""A generated loopback site for site crawls: 10 sections x 18 pages, pages only its sitemaps
name, a robots.txt that disallows /private/, duplicate URLs (query strings, tracking
parameters, fragments, a redirect), a redirect loop, a slow page, and links and a redirect to
refused addresses. Counts every request by path."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

from tests.crawl.site import SITE_HOST, QuietServer, redirect, send

ORPHANS = 10  # reachable only through the sitemap index named in robots.txt
SLOW_SECONDS = 1.5
SLOWER_SECONDS = 3.0  # /slower: pages that hold a crawl slot long enough to queue others
FAILED = ("/loop/a", "/go-trap")  # a redirect loop; a redirect to a refused address
# /markup (linked from nowhere): a title and text that are markup once unescaped (the admin
# page must show them as text)
MARKUP_TITLE = '<img src=x onerror="window.__xss=1"> Markup'


def page(title: str, links: list[str], body: str = "") -> str:
    anchors = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<meta name='description' content='{title} of the tree'></head>"
        f"<body><main><h1>{title}</h1><p>{body or title} of the generated tree.</p></main>"
        f"<nav>{anchors}</nav></body></html>"
    )


class Tree:
    """`sections` x `pages` pages plus home, orphans, /slow and /search: 10 x 18 makes the
    200-page site of the crawl target (tools/bench_site_crawl.py); the tests use a smaller one."""

    def __init__(self, trap_port: int, sections: int = 3, pages: int = 6) -> None:
        self.trap_port = trap_port
        self.sections = sections
        self.pages = pages
        self.hits: Counter[str] = Counter()
        self.log: list[tuple[float, str]] = []  # (monotonic time, path) of every request
        self._lock = threading.Lock()
        tree = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with tree._lock:
                    tree.hits[self.path.split("?", 1)[0]] += 1
                    tree.log.append((time.monotonic(), self.path))
                tree.route(self)

        self.server = QuietServer((SITE_HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://{SITE_HOST}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pages_loaded(self) -> set[str]:
        """Every path a complete crawl loads (as the browser asks for them)."""
        paths = {"/", "/slow", "/search"}
        for s in range(self.sections):
            paths.add(f"/s/{s}")
            paths.update(f"/s/{s}/p/{p}" for p in range(self.pages))
        paths.update(f"/orphan/{k}" for k in range(ORPHANS))
        return paths

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        trap = f"http://127.0.0.1:{self.trap_port}"
        if path == "/":
            links = [f"/s/{s}" for s in range(self.sections)]
            links += [
                "/private/a",
                "/private/b",
                "/slow",
                "/loop/a",
                "/go-trap",
                "/moved",
                f"{trap}/secret",
                "http://169.254.169.254/latest/meta-data/",
                "http://10.0.0.1/admin",
            ]
            send(h, 200, page("Home", links))
        elif path == "/robots.txt":
            body = (
                f"User-agent: *\nDisallow: /private/\n\nSitemap: {self.origin}/sitemap_index.xml\n"
            )
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body.encode())
        elif path == "/sitemap.xml":
            urls = [self.url(f"/s/{s}") for s in range(self.sections)] + [self.url("/private/c")]
            self._xml(h, "urlset", "url", urls)
        elif path == "/sitemap_index.xml":
            self._xml(h, "sitemapindex", "sitemap", [self.url("/sitemap-orphans.xml")])
        elif path == "/sitemap-orphans.xml":
            urls = [self.url(f"/orphan/{k}") for k in range(ORPHANS)]
            # a sitemap naming a refused address must not make the crawl go there
            urls.append(f"{trap}/from-sitemap")
            self._xml(h, "urlset", "url", urls)
        elif len(parts) == 2 and parts[0] == "s":
            s = int(parts[1])
            links = [f"/s/{s}/p/{p}" for p in range(self.pages)] + ["/"]
            send(h, 200, page(f"Section {s}", links))
        elif len(parts) == 4 and parts[0] == "s" and parts[2] == "p":
            s, p = int(parts[1]), int(parts[3])
            nxt = (p + 1) % self.pages
            links = [
                f"/s/{s}",
                f"/s/{s}/p/{nxt}",
                f"/s/{s}/p/{nxt}?utm_source=feed&utm_medium=rss",  # tracking: same page
                f"/s/{s}/p/{nxt}#comments",  # fragment: same page
                "/search?b=2&a=1",  # query order: one page
                "/search?a=1&b=2",
            ]
            send(h, 200, page(f"Page {s}.{p}", links))
        elif len(parts) == 2 and parts[0] == "orphan":
            send(h, 200, page(f"Orphan {parts[1]}", ["/"]))
        elif path == "/markup":
            escaped = MARKUP_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            send(h, 200, page(escaped.replace('"', "&quot;"), ["/s/0", "/s/1"]))
        elif path == "/search":
            send(h, 200, page("Search", ["/"]))
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            send(h, 200, page("Slow", ["/"]))
        elif path == "/slower":
            time.sleep(SLOWER_SECONDS)
            send(h, 200, page("Slower", ["/"]))
        elif path == "/loop/a":
            redirect(h, 302, "/loop/b")
        elif path == "/loop/b":
            redirect(h, 302, "/loop/a")
        elif path == "/go-trap":
            redirect(h, 302, f"{trap}/redirected")
        elif path == "/moved":
            redirect(h, 301, "/s/1")
        elif parts[0] == "private":
            send(h, 200, page("Private", ["/"]))
        else:
            send(h, 404, page("Not found", []))

    def _xml(self, h: BaseHTTPRequestHandler, root: str, item: str, urls: list[str]) -> None:
        entries = "".join(f"<{item}><loc>{url}</loc></{item}>" for url in urls)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</{root}>'
        ).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
