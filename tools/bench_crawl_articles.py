"""Crawl throughput in one run, on the same small article pages served on loopback: ours
(POST /api/crawl), a bare Playwright loop on the same Chromium, and crawl4ai where it is
installed; concurrency 1 and 4, text only and with a viewport screenshot.

    python -m tools.bench_crawl_articles [--pages 40] [--rounds 2] [--wait-for-js]
        [--crawl4ai-python /tmp/c4ai/bin/python] [--chromium /usr/lib/chromium/chromium]

- ours: `homelab-ai serve` (no models; the crawl needs no Triton model) allowing the loopback
  article server through crawl.allowed_hosts; every crawl gets its own browser context and
  goes through the SSRF proxy, text extracted by trafilatura.
- bare: in this process, Playwright launching the same Chromium binary with Playwright's
  default arguments; per URL a new context, new page, goto (load event), content() (and
  screenshot()), close; no proxy, no extraction. The same loop with our Chromium arguments
  (frontend.crawl.browser.CHROMIUM_FLAGS) is printed too, to show what they are worth.
- crawl4ai: `AsyncWebCrawler.arun` (markdown, cache bypassed) on the same Chromium, run by a
  separate interpreter that has crawl4ai installed (never a project dependency); skipped
  when that interpreter is missing.

Rounds interleave the crawlers; each figure is the median of the rounds. Exits 1 when ours
misses its targets: concurrency 4 text only >= 1.5x the bare loop, and faster than
concurrency 1. (tools/bench_crawl measures a mixed page set, text fidelity and JS waiting.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, async_playwright

from frontend.crawl.browser import CHROMIUM_FLAGS, DEBIAN_CHROMIUM
from frontend.models.stubs import find_pids, resident_bytes
from tools.benchlib import closed_loop, running_service

TARGET_RATIO = 1.5
SETTINGS = [(1, False), (4, False), (1, True), (4, True)]  # (concurrency, screenshot)

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
    url: str, site: str, clients: int, pages: int, body: dict[str, object], first: int = 0
) -> float:
    """pages/s for `pages` crawls through the API spread over `clients` concurrent clients."""
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def call(index: int) -> int:
            index += first
            payload = {**body, "url": f"{site}/article/{index}"}
            async with session.post(f"{url}/api/crawl", json=payload) as response:
                result = await response.json()
                if response.status != 200 or f"Article {index}" != result["title"]:
                    raise RuntimeError(f"HTTP {response.status}: {str(result)[:200]}")
                if body.get("screenshot") and not result.get("screenshot_base64"):
                    raise RuntimeError("no screenshot")
            return 1

        return (await closed_loop(clients, None, call, calls=pages)).rate


async def bare_rate(
    browser: Browser, site: str, clients: int, pages: int, shot: bool, first: int = 0
) -> float:
    """The bare Playwright loop: per URL a fresh context and page, goto, content(), close."""

    async def call(index: int) -> int:
        index += first
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{site}/article/{index}")
            html = await page.content()
            if f"Article {index}" not in html:
                raise RuntimeError(f"bare loop: wrong page for {index}")
            if shot:
                await page.screenshot(type="png")
        finally:
            await context.close()
        return 1

    return (await closed_loop(clients, None, call, calls=pages)).rate


# Run by the crawl4ai interpreter: argv = chromium, site, plan (JSON list of
# [clients, pages, screenshot, first index]); prints one line `RESULT [pages/s, ...]`.
CRAWL4AI_SCRIPT = """
import asyncio, json, sys, time
from crawl4ai import AsyncWebCrawler, BrowserConfig, CacheMode, CrawlerRunConfig
from crawl4ai.browser_manager import BrowserManager
chromium, site, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
build = BrowserManager._build_browser_args
def with_chromium(self):
    args = build(self)
    args["executable_path"] = chromium
    return args
BrowserManager._build_browser_args = with_chromium
async def rate(crawler, clients, pages, shot, first):
    config = CrawlerRunConfig(cache_mode=CacheMode.BYPASS, screenshot=shot, verbose=False)
    counter = iter(range(first, first + pages))
    async def client():
        for i in counter:
            r = await crawler.arun(f"{site}/article/{i}", config=config)
            if not r.success or f"Article {i}" not in (r.markdown or ""):
                raise RuntimeError(f"crawl4ai failed: {r.error_message}")
            if shot and not r.screenshot:
                raise RuntimeError("crawl4ai: no screenshot")
    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return pages / (time.perf_counter() - began)
async def main():
    async with AsyncWebCrawler(config=BrowserConfig(headless=True, verbose=False)) as crawler:
        print("RESULT " + json.dumps([await rate(crawler, *step) for step in plan]))
asyncio.run(main())
"""


def crawl4ai_rates(
    python: Path, chromium: Path, site: str, plan: list[list[object]]
) -> list[float] | None:
    """crawl4ai's pages/s for each step of `plan`; None when it cannot run here."""
    env = {"CRAWL4AI_NO_CLOUD_NOTICE": "1", "PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir()}
    try:
        done = subprocess.run(
            [str(python), "-c", CRAWL4AI_SCRIPT, str(chromium), site, json.dumps(plan)],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"crawl4ai skipped: {exc}")
        return None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            rates: list[float] = json.loads(line[7:])
            return rates
    print(f"crawl4ai skipped (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return None


def chromium_pss_mib() -> float:
    pids = find_pids(lambda argv: bool(argv) and "chromium" in argv[0])
    return resident_bytes(pids) / 2**20


def _label(clients: int, shot: bool) -> str:
    return f"c{clients} {'text + PNG' if shot else 'text only'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40, help="crawls per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wait-for-js", action="store_true", help="ours with wait_for_js")
    parser.add_argument(
        "--chromium",
        type=Path,
        default=DEBIAN_CHROMIUM,
        help="the Chromium binary of all crawlers (ours through crawl.chromium_path), e.g. "
        "/usr/lib/chromium/chromium-headless-shell",
    )
    parser.add_argument(
        "--crawl4ai-python",
        type=Path,
        default=Path("/tmp/c4ai/bin/python"),
        help="an interpreter with crawl4ai installed (python3 -m venv /tmp/c4ai && "
        "/tmp/c4ai/bin/pip install crawl4ai); skipped if missing",
    )
    args = parser.parse_args()
    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    crawl = {
        "allowed_hosts": ["127.0.0.1"],
        "max_concurrent": 4,
        "max_queued": 16,
        "chromium_path": str(args.chromium),
    }
    try:
        with running_service(work, work / "data", {}, {"crawl": crawl}) as (url, _service):
            return asyncio.run(_run(args, url, site))
    finally:
        server.shutdown()


async def _run(args: argparse.Namespace, url: str, site: str) -> int:
    names = ["ours", "bare", "bare+flags"]
    use_c4ai = args.crawl4ai_python.exists()
    if use_c4ai:
        names.append("crawl4ai")
    else:
        print(f"crawl4ai skipped: no {args.crawl4ai_python}")
    rates: dict[tuple[str, int, bool], list[float]] = {}
    pages = args.pages
    async with async_playwright() as playwright:
        bare = await playwright.chromium.launch(executable_path=args.chromium)
        tuned = await playwright.chromium.launch(
            executable_path=args.chromium, args=list(CHROMIUM_FLAGS)
        )
        body = {"wait_for_js": args.wait_for_js}
        await crawl_rate(url, site, 4, 8, body)  # launches the browser
        for browser in (bare, tuned):
            await bare_rate(browser, site, 4, 8, False)
        for round_ in range(args.rounds):
            began = time.perf_counter()
            first = (round_ + 1) * 10_000
            for clients, shot in SETTINGS:
                key = (clients, shot)
                shot_body = {**body, "screenshot": shot}
                measured = {
                    "ours": await crawl_rate(url, site, clients, pages, shot_body, first),
                    "bare": await bare_rate(bare, site, clients, pages, shot, first),
                    "bare+flags": await bare_rate(tuned, site, clients, pages, shot, first),
                }
                for name, value in measured.items():
                    rates.setdefault((name, *key), []).append(value)
            if use_c4ai:
                plan: list[list[object]] = [[4, 8, False, 0]]  # warm-up
                plan += [[c, pages, s, first] for c, s in SETTINGS]
                c4ai = await asyncio.to_thread(
                    crawl4ai_rates, args.crawl4ai_python, args.chromium, site, plan
                )
                if c4ai is None:
                    use_c4ai = False
                    names.remove("crawl4ai")
                else:
                    for (clients, shot), value in zip(SETTINGS, c4ai[1:], strict=True):
                        rates.setdefault(("crawl4ai", clients, shot), []).append(value)
            print(
                f"round {round_ + 1} ({time.perf_counter() - began:.0f} s): "
                + "; ".join(
                    f"{_label(c, s)}: "
                    + ", ".join(f"{n} {rates[(n, c, s)][-1]:.2f}" for n in names)
                    for c, s in SETTINGS
                )
            )
        pss = chromium_pss_mib()
        await bare.close()
        await tuned.close()
    median = {key: statistics.median(values) for key, values in rates.items()}
    print(
        f"\nArticle pages on loopback, pages/s (median of {args.rounds} rounds, {pages} pages "
        f"each); {args.chromium}; ours with wait_for_js={args.wait_for_js}; ratios to the "
        "bare loop\n"
    )
    print("| setting | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for clients, shot in SETTINGS:
        base = median[("bare", clients, shot)]
        cells = []
        for name in names:
            value = median[(name, clients, shot)]
            cells.append(f"{value:.2f}" + ("" if name == "bare" else f" ({value / base:.2f}x)"))
        print(f"| {_label(clients, shot)} | " + " | ".join(cells) + " |")
    print(f"\nChromium PSS after the run (all browsers still open): {pss:.0f} MiB")
    ratio = median[("ours", 4, False)] / median[("bare", 4, False)]
    scales = median[("ours", 4, False)] > median[("ours", 1, False)]
    print(
        f"target: ours c4 text only {ratio:.2f}x the bare loop (>= {TARGET_RATIO}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); c4 faster than c1: "
        f"{'yes' if scales else 'NO'}"
    )
    return 0 if ratio >= TARGET_RATIO and scales else 1


if __name__ == "__main__":
    sys.exit(main())
