"""The page set of tools/bench_crawl, served on loopback: five kinds of page, each with the
phrases a crawl must keep (body) and those it must leave out (boilerplate).

- article: navigation, an article, a comment thread, a footer
- js: text a timer inserts 500 ms after the load event
- docs: a docs page (sidebar navigation, headings, code, a table, "edit this page")
- gallery: 50 links and images with figure captions and alt text
- big: a 2 MB article
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("article", "js", "docs", "gallery", "big")
VARIANTS = 4  # pages of each kind in one pass

NAV = "Frontpage Politics Weather Crossword Newsletter signup"
COMMENTS = ["Reader comment: I saw the same birds last week", "Reply: thanks for the photos"]
FOOTER = "Copyright Valley Gazette, all rights reserved"
SENTENCE = (
    "The heron stood in the shallow water of the mill pond for most of the morning, and "
    "every few minutes it struck and came up with a small silver fish."
)


@dataclass(frozen=True)
class Page:
    title: str
    html: str
    body: tuple[str, ...]  # phrases to keep
    boilerplate: tuple[str, ...]  # phrases to leave out


def _shell(title: str, main: str, aside: str = "") -> str:
    nav = " ".join(f'<a href="/section/{w.lower()}">{w}</a>' for w in NAV.split())
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        "<meta name='description' content='A benchmark page.'></head><body>"
        f"<header><nav>{nav}</nav></header>{aside}<main>{main}</main>"
        f"<footer><p>{FOOTER}.</p></footer></body></html>"
    )


def article(i: int) -> Page:
    body = [f"Article {i} opens with the valley's news of the returning birds.", SENTENCE]
    paragraphs = "".join(f"<p>{body[0]} {SENTENCE}</p>" for _ in range(10))
    comments = "".join(f'<div class="comment"><p>{c}.</p></div>' for c in COMMENTS)
    main = (
        f"<article><h1>Article {i}</h1>{paragraphs}<p>{body[1]}</p></article>"
        f'<section id="comments" class="comments"><h2>Comments</h2>{comments}</section>'
    )
    return Page(f"Article {i}", _shell(f"Article {i}", main), tuple(body), (NAV, *COMMENTS, FOOTER))


def js(i: int) -> Page:
    late = f"Script page {i}: this paragraph arrived half a second after the load event."
    static = f"Script page {i} has a static introduction that is there from the start."
    main = (
        f"<article><h1>Script page {i}</h1><p>{static} {SENTENCE}</p>"
        f"<p>{SENTENCE} {SENTENCE}</p><div id='slot'></div></article>"
        "<script>addEventListener('load', () => setTimeout(() => {"
        f"const p = document.createElement('p'); p.textContent = {late!r};"
        "document.getElementById('slot').appendChild(p); }, 500));</script>"
    )
    return Page(f"Script page {i}", _shell(f"Script page {i}", main), (static, late), (NAV, FOOTER))


def docs(i: int) -> Page:
    sidebar_items = ["Installation guide", "Configuration reference", "Release notes archive"]
    aside = (
        '<aside class="sidebar"><nav><ul>'
        + "".join(f'<li><a href="/docs/{n}">{t}</a></li>' for n, t in enumerate(sidebar_items))
        + "</ul></nav></aside>"
    )
    intro = f"Docs page {i} explains how the crawl endpoint reads a rendered page."
    code = "homelab-ai serve --config config.yaml"
    cell = "max_transfer_mb"
    main = (
        f"<article><h1>Docs page {i}</h1><p>{intro} {SENTENCE}</p><h2>Usage</h2>"
        f"<p>{SENTENCE}</p><pre><code>{code}</code></pre><h2>Options</h2>"
        f"<table><tr><th>Option</th><th>Meaning</th></tr><tr><td>{cell}</td>"
        "<td>bytes one crawl may download</td></tr></table>"
        f"<p>{SENTENCE}</p></article>"
        '<div class="edit-link"><a href="/edit">Edit this page on the forge</a></div>'
    )
    return Page(
        f"Docs page {i}",
        _shell(f"Docs page {i}", main, aside),
        (intro, code, cell),
        (*sidebar_items, "Edit this page on the forge", FOOTER),
    )


def gallery(i: int) -> Page:
    captions = [f"Gallery {i} figure 7: the heron colony at first light.",
                f"Gallery {i} figure 31: the weir after the spring floods."]  # fmt: skip
    alt = f"Gallery {i} map of the footpath closure near the nests"
    intro = f"Gallery {i} collects fifty pictures of the mill pond through the year."
    figures = []
    for n in range(50):
        caption = {7: captions[0], 31: captions[1]}.get(n, f"Picture {n} of the pond.")
        figures.append(
            f'<figure><a href="/photo/{i}/{n}"><img src="/img/{n}.jpg" alt="IMG_{1000 + n}.jpg">'
            f"</a><figcaption>{caption}</figcaption></figure>"
        )
    main = (
        f"<article><h1>Gallery {i}</h1><p>{intro} {SENTENCE}</p>{''.join(figures)}"
        f'<p><img src="/map.png" alt="{alt}"></p></article>'
    )
    return Page(
        f"Gallery {i}", _shell(f"Gallery {i}", main), (intro, *captions, alt), (NAV, FOOTER)
    )


def big(i: int) -> Page:
    sections = []
    for s in range(1_500):  # about 2 MB
        text = "".join(
            f"<p>Big page {i} section {s} paragraph {p}: {SENTENCE}</p>" for p in range(6)
        )
        sections.append(f"<h2>Section {s}</h2>{text}")
    last = f"Big page {i} ends with this closing sentence."
    main = f"<article><h1>Big page {i}</h1>{''.join(sections)}<p>{last}</p></article>"
    body = (
        f"Big page {i} section 0 paragraph 0:",
        f"Big page {i} section 400 paragraph 2:",
        f"Big page {i} section 750 paragraph 3:",
        f"Big page {i} section 1100 paragraph 1:",
        f"Big page {i} section 1499 paragraph 5:",
        last,
    )
    return Page(f"Big page {i}", _shell(f"Big page {i}", main), body, (NAV, FOOTER))


BUILDERS = {"article": article, "js": js, "docs": docs, "gallery": gallery, "big": big}


def pages() -> dict[str, Page]:
    """Every page by path: /<kind>/<variant>."""
    return {f"/{k}/{v}": BUILDERS[k](v) for k in KINDS for v in range(VARIANTS)}


def probes(text: str, page: Page) -> tuple[int, int]:
    """(body phrases kept, boilerplate phrases leaked) in `text`, spaces normalized."""
    flat = " ".join(text.replace("\\", "").split())
    kept = sum(1 for phrase in page.body if phrase in flat)
    leaked = sum(1 for phrase in page.boilerplate if phrase in flat)
    return kept, leaked


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the browsers drop connections they no longer need


def serve(site: dict[str, Page], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """The pages on a free port (images and other paths: 404), in a daemon thread."""
    encoded = {path: page.html.encode() for path, page in site.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            data = encoded.get(self.path.split("?", 1)[0])
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = _Quiet((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
