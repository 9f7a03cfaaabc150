"""Pages served on loopback for the crawl tests, a trap that counts every connection, and a
listener that never answers."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.crawl import whole_pages

SITE_HOST = "127.0.0.2"  # allowed by the tests' crawl.allowed_hosts; 127.0.0.1 is not

ARTICLE_BODY = [
    "The heron stood in the shallow water of the mill pond for most of the morning.",
    "Every few minutes it struck, and every few minutes it came up with a small silver fish.",
    "Farmers along the valley say the birds returned after the old weir was rebuilt in spring.",
    "Local naturalists counted eleven nests this year, the most since records began in 1952.",
    "The council plans to keep the footpath closed near the colony until the chicks fledge.",
]
NAV_TEXT = "Home Sections Subscribe Sign in Weather Sports Puzzles"
AD_TEXT = "Buy discount garden gnomes now limited offer"
COMMENT_TEXT = "First comment: great article, cannot wait for the next one"
SIDEBAR_TEXT = " ".join(f"Sensor reading number {i} is within range." for i in range(20))
JS_TEXT = "This paragraph was inserted by a script half a second after load."
LATE_TEXT = "This element arrived long after the network went quiet."
LATE_PAGE = f"""<!doctype html><html><head><title>Late page</title></head><body>
<p>Waiting for the late element.</p>
<script>setTimeout(() => {{
  const p = document.createElement("p"); p.id = "late"; p.textContent = "{LATE_TEXT}";
  document.body.appendChild(p);
}}, 1200);</script></body></html>"""


def article_html(title: str = "Herons return to the mill pond") -> str:
    paragraphs = "\n".join(f"<p>{p} {p}</p>" for p in ARTICLE_BODY)
    return f"""<!doctype html><html lang="en"><head><title>{title}</title>
<meta name="description" content="Herons are back in the valley."></head><body>
<header><nav><a href="/">Home</a> <a href="/sections">Sections</a>
<a href="/subscribe">Subscribe</a>
<a href="/signin">Sign in</a> <a href="/weather">Weather</a> <a href="/sports">Sports</a>
<a href="/puzzles">Puzzles</a></nav></header>
<aside class="ad">{AD_TEXT}</aside>
<main><article><h1>{title}</h1>{paragraphs}</article></main>
<section id="comments" class="comments"><h2>Comments</h2><div class="comment">{COMMENT_TEXT}</div>
</section><footer>Copyright 2026 Valley News. All rights reserved. Privacy. Terms.</footer>
</body></html>"""


JS_PAGE = f"""<!doctype html><html><head><title>Script page</title></head><body>
<p>Static part of the page.</p><div id="slot"></div>
<script>setTimeout(() => {{
  const p = document.createElement("p"); p.textContent = "{JS_TEXT}";
  document.getElementById("slot").appendChild(p);
}}, 500);</script></body></html>"""


# Shows the cookies and storage the page found, then leaves some of its own behind: a crawl
# that sees another crawl's state says so.
STATE_PAGE = """<!doctype html><html><head><title>State</title></head><body><p id="seen"></p>
<script>
const seen = [document.cookie || "no cookie", localStorage.getItem("left") || "no storage"];
document.getElementById("seen").textContent = "Found: " + seen.join(", ");
document.cookie = "left=by-an-earlier-crawl; max-age=3600";
localStorage.setItem("left", "by an earlier crawl");
</script></body></html>"""


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the browser drops connections it no longer needs (a hanging image, say)


class Site:
    """A threaded HTTP server on SITE_HOST; hanging handlers are released at close()."""

    def __init__(self, trap_port: int) -> None:
        self.trap_port = trap_port
        self.release = threading.Event()
        self.requested: list[str] = []  # every path asked for, in order
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.requested.append(self.path)
                site.route(self)

        self.server = QuietServer((SITE_HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{SITE_HOST}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def route(self, h: BaseHTTPRequestHandler) -> None:
        trap = f"http://127.0.0.1:{self.trap_port}"
        path = h.path.split("?", 1)[0]
        if path == "/article":
            send(h, 200, article_html())
        elif path == "/js":
            send(h, 200, JS_PAGE)
        elif path == "/state":
            send(h, 200, STATE_PAGE)
        elif path == "/late":
            send(h, 200, LATE_PAGE)
        elif path == "/echo":
            seen = "".join(
                f"<li>{name}: {h.headers.get(name, '-')}</li>"
                for name in ("User-Agent", "X-Homelab-Test", "Cookie")
            )
            send(
                h, 200, f"<html><head><title>Echo</title></head><body><ul>{seen}</ul></body></html>"
            )
        elif path == "/with-image":
            send(
                h,
                200,
                article_html("Page with an image").replace(
                    "<main>", '<main><img src="/pixel.png" alt="pixel">'
                ),
            )
        elif path == "/pixel.png":
            send(h, 404, "")
        elif path == "/r301":
            redirect(h, 301, "/r302")
        elif path == "/r302":
            redirect(h, 302, "/article")
        elif path == "/refresh":
            send(
                h,
                200,
                "<html><head><title>Moved</title>"
                '<meta http-equiv="refresh" content="0;url=/article">'
                "</head><body><p>This page has moved to the article.</p></body></html>",
            )
        elif path == "/slow-image":
            send(
                h,
                200,
                article_html("Page with a slow image").replace(
                    "<main>", '<main><img src="/never.png">'
                ),
            )
        elif path in ("/never.png", "/no-answer"):
            self.release.wait(60)
        elif path == "/endless":
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.end_headers()  # no length: the document only ends when the connection does
            h.wfile.write(
                b"<html><head><title>Endless</title></head><body>"
                b"<p>The first part of an endless document arrived.</p>"
            )
            h.wfile.flush()
            self.release.wait(60)
        elif path == "/huge":
            block = "".join(
                f"<p>Paragraph {i} of a very large page. {ARTICLE_BODY[i % 5]}</p>"
                for i in range(40_000)
            )
            send(
                h,
                200,
                f"<html><head><title>Huge</title></head><body><article>{block}</article></body></html>",
            )
        elif path == "/tall":
            send(
                h,
                200,
                '<html><body style="margin:0"><div style="height:2500px">Tall</div></body></html>',
            )
        elif path == "/very-tall":
            send(
                h,
                200,
                '<html><body style="margin:0"><div style="height:20000px">Very</div></body></html>',
            )
        elif path == "/missing":
            send(
                h,
                404,
                "<html><head><title>Not here</title></head>"
                "<body><p>No such page.</p></body></html>",
            )
        elif path == "/to-trap":
            redirect(h, 302, f"{trap}/secret")
        elif path == "/to-trap-by-name":
            redirect(h, 302, f"http://localhost:{self.trap_port}/secret")
        elif path == "/trap-subresources":
            send(
                h,
                200,
                f"""<html><head><title>Innocent page</title>
<link rel="stylesheet" href="{trap}/a.css">
<link rel="prefetch" href="{trap}/prefetch"></head><body><p>Nothing to see here.</p>
<img src="{trap}/pixel.png"><iframe src="{trap}/frame"></iframe>
<script>fetch("{trap}/api").catch(() => {{}}); new Image().src = "http://[::1]:{self.trap_port}/v6";
try {{ new WebSocket("ws://127.0.0.1:{self.trap_port}/ws"); }} catch (e) {{}}</script>
</body></html>""",
            )
        elif path == "/to-nowhere":
            redirect(h, 302, "http://no-such-host.invalid/")
        elif path == "/sidebar-only":
            send(
                h,
                200,
                "<html><body><h1>Status</h1>"
                f'<aside class="sidebar">{SIDEBAR_TEXT}</aside></body></html>',
            )
        elif path == "/links":
            send(
                h,
                200,
                '<html><body><a href="/article">Article</a> <a href="https://example.org/x?y=1">Elsewhere</a>'
                ' <a href="mailto:a@b.c">Mail</a> <a href="/article">Again</a></body></html>',
            )
        elif (page := whole_pages.route(path)) is not None:
            send(h, 200, page[1], page[0])
        else:
            send(h, 404, "not found")


def send(h: BaseHTTPRequestHandler, status: int, body: str, kind: str = "text/html") -> None:
    data = body.encode()
    h.send_response(status)
    h.send_header("Content-Type", f"{kind}; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def redirect(h: BaseHTTPRequestHandler, status: int, location: str) -> None:
    h.send_response(status)
    h.send_header("Location", location)
    h.send_header("Content-Length", "0")
    h.end_headers()


class Listener:
    """Accepts TCP connections on loopback and counts them; never answers (a trap, or a host
    that hangs). Listens on 127.0.0.1 and, with the same port, on ::1."""

    def __init__(self, host: str = "127.0.0.1", also_v6: bool = True) -> None:
        self.hits = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sockets = [socket.create_server((host, 0))]
        self.port = self.sockets[0].getsockname()[1]
        if also_v6:
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        self._held: list[socket.socket] = []
        for sock in self.sockets:
            sock.settimeout(0.2)
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.hits += 1
                self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets + self._held:
            sock.close()


def tls_listener(directory: Path) -> tuple[ThreadingHTTPServer, int]:
    """An HTTPS server on SITE_HOST with a self-signed certificate (the browser must refuse)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=self-signed.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            send(self, 200, "<html><body>secret over TLS</body></html>")

    server = ThreadingHTTPServer((SITE_HOST, 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
