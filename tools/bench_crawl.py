"""Crawl throughput: pages/s through POST /api/crawl for article pages served on loopback,
at concurrency 1 and 4, with and without screenshots.

    python -m tools.bench_crawl [--pages 40] [--rounds 2] [--wait-for-js]

Starts `homelab-ai serve` (with no models; the crawl needs no Triton model) allowing the
loopback article server through crawl.allowed_hosts, and prints pages/s per setting
(median of the rounds) and the Chromium processes' memory after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

from frontend.models.stubs import find_pids, resident_bytes
from tools.benchlib import closed_loop, running_service

PARAGRAPH = (
    "The heron stood in the shallow water of the mill pond for most of the morning, and "
    "every few minutes it struck and came up with a small silver fish. "
)


def article(index: int) -> bytes:
    body = "".join(f"<p>{index}: {PARAGRAPH * 3}</p>" for _ in range(12))
    nav = "".join(f'<a href="/section/{n}">Section {n}</a> ' for n in range(20))
    return (
        f"<!doctype html><html lang='en'><head><title>Article {index}</title>"
        "<meta name='description' content='A benchmark article.'></head><body>"
        f"<header><nav>{nav}</nav></header><main><article><h1>Article {index}</h1>{body}"
        "</article></main><footer>Copyright. Privacy. Terms.</footer></body></html>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        digits = "".join(ch for ch in self.path if ch.isdigit())
        data = article(int(digits or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the browser drops connections it no longer needs


async def crawl_rate(
    url: str, site: str, clients: int, pages: int, body: dict[str, object]
) -> float:
    """pages/s for `pages` crawls spread over `clients` concurrent clients."""
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def call(index: int) -> int:
            payload = {**body, "url": f"{site}/article/{index}"}
            async with session.post(f"{url}/api/crawl", json=payload) as response:
                result = await response.json()
                if response.status != 200 or f"Article {index}" != result["title"]:
                    raise RuntimeError(f"HTTP {response.status}: {str(result)[:200]}")
            return 1

        return (await closed_loop(clients, None, call, calls=pages)).rate


def chromium_pss_mib() -> float:
    pids = find_pids(lambda argv: bool(argv) and "chromium" in argv[0])
    return resident_bytes(pids) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40, help="crawls per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wait-for-js", action="store_true", help="crawl with wait_for_js")
    args = parser.parse_args()

    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    crawl = {"allowed_hosts": ["127.0.0.1"], "max_concurrent": 4, "max_queued": 16}
    settings = [(c, shot) for shot in (False, True) for c in (1, 4)]
    rates: dict[tuple[int, bool], list[float]] = {key: [] for key in settings}
    with running_service(work, work / "data", {}, {"crawl": crawl}) as (url, _service):
        warm = {"wait_for_js": args.wait_for_js}
        asyncio.run(crawl_rate(url, site, 4, 8, warm))  # launches the browser
        for round_ in range(args.rounds):
            for clients, shot in settings:
                body = {"wait_for_js": args.wait_for_js, "screenshot": shot}
                rates[(clients, shot)].append(
                    asyncio.run(crawl_rate(url, site, clients, args.pages, body))
                )
            print(
                f"round {round_ + 1}: "
                + ", ".join(
                    f"c={c}{' +png' if s else ''} {v[-1]:.2f}/s" for (c, s), v in rates.items()
                )
            )
        pss = chromium_pss_mib()
    server.shutdown()
    print(
        f"\nPOST /api/crawl, article pages on loopback, wait_for_js={args.wait_for_js}, "
        f"{args.pages} pages per measurement, medians of {args.rounds} rounds"
    )
    for (clients, shot), values in rates.items():
        label = f"concurrency {clients}, {'with' if shot else 'without'} screenshot"
        print(f"  {label:40} {statistics.median(values):5.2f} pages/s")
    print(f"Chromium PSS after the run (browser still open): {pss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
