"""Crawl speed and text fidelity in one run, on one loopback page set (tools/bench_crawl_pages:
an article with navigation and comments, text a script adds 500 ms after load, a docs page,
50 links and images with captions, a 2 MB page; 4 of each): pages/s at concurrency 1 and 4,
the p50 latency on a static article (the crawlers taking turns), and the text probes (body
phrases kept, boilerplate phrases left out) of each crawler.

    python -m tools.bench_crawl [--rounds 1] [--static-runs 15] [--baseline-code DIR]
        [--crawl4ai-python /work/venvs/crawl4ai/bin/python] [--chromium /usr/lib/chromium/chromium]

- ours: `homelab-ai serve` (no models) allowing the loopback site through crawl.allowed_hosts,
  POST /api/crawl with wait_for_js true (the default) and false; probes on `text`.
  --baseline-code DIR: a second service running DIR's frontend (e.g. a clean clone of an
  older commit) is measured in the same run as "before".
- crawl4ai: `AsyncWebCrawler.arun` (cache bypassed, PruningContentFilter markdown) with
  wait_until networkidle and with its default, on the same Chromium binary (crawl4ai cannot
  download browsers here), run by an interpreter of its own virtualenv (never a project
  dependency): python3 -m venv /work/venvs/crawl4ai && /work/venvs/crawl4ai/bin/pip install
  crawl4ai. Probes on fit_markdown (raw_markdown's in brackets). Skipped when missing.
- bare: in this process, Playwright on the same Chromium (its default arguments): per URL a
  new context and page, goto (load event), body innerText, close.

Exits 1 when ours misses its targets: wait_for_js costs a static article at most 150 ms of
p50 over no wait, and ours keeps every body probe and leaks no boilerplate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, async_playwright

from frontend.crawl.browser import DEBIAN_CHROMIUM
from tools.bench_crawl_pages import KINDS, VARIANTS, Page, pages, probes, serve
from tools.benchlib import closed_loop, running_service

WAIT_BUDGET_MS = 150.0
DEFAULT_CRAWL4AI = Path("/work/venvs/crawl4ai/bin/python")
Fetch = Callable[[str], Awaitable[str]]  # path -> text


@dataclass
class Figures:
    c1: list[float] = field(default_factory=list)  # pages/s per round
    c4: list[float] = field(default_factory=list)
    static_ms: list[float] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # fidelity path -> text
    extra: dict[str, str] = field(default_factory=dict)  # crawl4ai's raw markdown


def order() -> list[str]:
    """One pass: every page, kinds interleaved (article 0, js 0, ..., big 3)."""
    return [f"/{k}/{v}" for v in range(VARIANTS) for k in KINDS]


async def measure(fetch: Fetch, figures: Figures) -> None:
    """One pass at concurrency 1 (its texts kept for the probes), one at concurrency 4."""
    paths = order()
    texts: dict[str, str] = {}

    async def call(index: int) -> int:
        texts[paths[index]] = await fetch(paths[index])
        return 1

    figures.c1.append((await closed_loop(1, None, call, calls=len(paths))).rate)
    figures.c4.append((await closed_loop(4, None, call, calls=len(paths))).rate)
    figures.texts = {f"/{k}/0": texts[f"/{k}/0"] for k in KINDS}


async def static_p50(fetches: dict[str, Fetch], figures: dict[str, Figures], runs: int) -> None:
    """p50 latency on a static article, the crawlers taking turns (a busy moment of the
    machine falls on all of them alike)."""
    latencies: dict[str, list[float]] = {name: [] for name in fetches}
    for index in range(runs):
        for name, fetch in fetches.items():
            began = time.perf_counter()
            await fetch(f"/article/{index % VARIANTS}")
            latencies[name].append((time.perf_counter() - began) * 1000)
    for name, values in latencies.items():
        figures[name].static_ms.append(statistics.median(values))


def ours(url: str, site: str, wait_for_js: bool) -> Fetch:
    timeout = aiohttp.ClientTimeout(total=300)

    async def fetch(path: str) -> str:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            payload = {"url": site + path, "wait_for_js": wait_for_js}
            async with session.post(f"{url}/api/crawl", json=payload) as response:
                result = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {str(result)[:200]}")
                return str(result["text"])

    return fetch


def bare(browser: Browser, site: str) -> Fetch:
    async def fetch(path: str) -> str:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(site + path)
            return await page.inner_text("body")
        finally:
            await context.close()

    return fetch


# Run by crawl4ai's interpreter: argv = chromium, site, JSON {paths, static_runs, rounds,
# modes}; prints `RESULT {mode: {c1: [...], c4: [...], static_ms: [...], texts, raw}}`.
CRAWL4AI_SCRIPT = """
import asyncio, json, statistics, sys, time
from crawl4ai import AsyncWebCrawler, BrowserConfig, CacheMode, CrawlerRunConfig
from crawl4ai.browser_manager import BrowserManager
from crawl4ai.content_filter_strategy import PruningContentFilter
from crawl4ai.markdown_generation_strategy import DefaultMarkdownGenerator
chromium, site, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
build = BrowserManager._build_browser_args
def with_chromium(self):
    args = build(self)
    args["executable_path"] = chromium
    return args
BrowserManager._build_browser_args = with_chromium
async def run(crawler, config, paths, clients):
    counter, latencies, out = iter(paths), [], {}
    async def client():
        for path in counter:
            began = time.perf_counter()
            r = await crawler.arun(site + path, config=config)
            if not r.success:
                raise RuntimeError(f"crawl4ai failed on {path}: {r.error_message}")
            latencies.append((time.perf_counter() - began) * 1000)
            out[path] = (r.markdown.fit_markdown or "", r.markdown.raw_markdown or "")
    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(paths) / (time.perf_counter() - began), statistics.median(latencies), out
async def main():
    result = {}
    async with AsyncWebCrawler(config=BrowserConfig(headless=True, verbose=False)) as crawler:
        for mode in plan["modes"]:
            options = {"wait_until": "networkidle"} if mode == "networkidle" else {}
            config = CrawlerRunConfig(cache_mode=CacheMode.BYPASS, verbose=False,
                markdown_generator=DefaultMarkdownGenerator(content_filter=PruningContentFilter()),
                **options)
            await run(crawler, config, plan["paths"][:4], 4)  # warm-up
            figures = result[mode] = {"c1": [], "c4": [], "static_ms": []}
            for _ in range(plan["rounds"]):
                rate, _, out = await run(crawler, config, plan["paths"], 1)
                figures["c1"].append(rate)
                figures["c4"].append((await run(crawler, config, plan["paths"], 4))[0])
                statics = [f"/article/{i % 4}" for i in range(plan["static_runs"])]
                figures["static_ms"].append((await run(crawler, config, statics, 1))[1])
            figures["texts"] = {p: out[p][0] for p in plan["fidelity"]}
            figures["raw"] = {p: out[p][1] for p in plan["fidelity"]}
    print("RESULT " + json.dumps(result))
asyncio.run(main())
"""


def crawl4ai(
    python: Path, chromium: Path, site: str, rounds: int, static_runs: int
) -> dict[str, Figures]:
    """crawl4ai's figures per mode; empty when it cannot run here."""
    plan = {
        "paths": order(),
        "fidelity": [f"/{k}/0" for k in KINDS],
        "rounds": rounds,
        "static_runs": static_runs,
        "modes": ["networkidle", "default"],
    }
    env = {"CRAWL4AI_NO_CLOUD_NOTICE": "1", "PATH": "/usr/bin:/bin", "HOME": tempfile.mkdtemp()}
    try:
        done = subprocess.run(
            [str(python), "-c", CRAWL4AI_SCRIPT, str(chromium), site, json.dumps(plan)],
            capture_output=True,
            text=True,
            timeout=1800,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"crawl4ai skipped: {exc}")
        return {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            found = json.loads(line[7:])
            return {
                mode: Figures(f["c1"], f["c4"], f["static_ms"], f["texts"], f["raw"])
                for mode, f in found.items()
            }
    print(f"crawl4ai skipped (exit {done.returncode}): {done.stderr.strip()[-600:]}")
    return {}


def fidelity(texts: dict[str, str], site: dict[str, Page]) -> tuple[int, int, list[str]]:
    """(body probes kept, boilerplate probes leaked, what went wrong per kind)."""
    kept = leaked = 0
    notes = []
    for path, text in texts.items():
        page = site[path]
        k, lk = probes(text, page)
        kept, leaked = kept + k, leaked + lk
        if k < len(page.body) or lk:
            kind = path.split("/")[1]
            notes.append(f"{kind} -{len(page.body) - k}" + (f" +{lk}" if lk else ""))
    return kept, leaked, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="passes per crawler (median)")
    parser.add_argument("--static-runs", type=int, default=15, help="static article crawls")
    parser.add_argument("--baseline-code", type=Path, help="a checkout measured as 'before'")
    parser.add_argument("--chromium", type=Path, default=DEBIAN_CHROMIUM)
    parser.add_argument("--crawl4ai-python", type=Path, default=DEFAULT_CRAWL4AI)
    args = parser.parse_args()
    site_pages = pages()
    server = serve(site_pages)
    site = f"http://127.0.0.1:{server.server_address[1]}"
    crawl = {
        "allowed_hosts": ["127.0.0.1"],
        "max_concurrent": 4,
        "max_queued": 16,
        "chromium_path": str(args.chromium),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    codes: dict[str, Path | None] = {"": None}
    if args.baseline_code:
        codes["before: "] = args.baseline_code
    try:
        with ExitStack() as stack:
            urls = {}
            for label, code in codes.items():
                where = work / (label.strip(": ") or "after")
                service = running_service(where, where / "data", {}, {"crawl": crawl}, None, code)
                urls[label] = stack.enter_context(service)[0]
            figures = asyncio.run(_measure_all(args, urls, site))
        if args.crawl4ai_python.exists():
            for mode, found in crawl4ai(
                args.crawl4ai_python, args.chromium, site, args.rounds, args.static_runs
            ).items():
                figures[f"crawl4ai {mode}"] = found
        else:
            print(f"crawl4ai skipped: no {args.crawl4ai_python}")
    finally:
        server.shutdown()
    return report(figures, site_pages, args)


async def _measure_all(
    args: argparse.Namespace, urls: dict[str, str], site: str
) -> dict[str, Figures]:
    fetches: dict[str, Fetch] = {}
    for label, url in urls.items():
        fetches[f"{label}ours, wait_for_js"] = ours(url, site, True)
        fetches[f"{label}ours, no JS wait"] = ours(url, site, False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=args.chromium)
        fetches["bare Playwright loop"] = bare(browser, site)
        figures = {name: Figures() for name in fetches}
        for fetch in fetches.values():  # launches the browsers
            await asyncio.gather(*(fetch(f"/article/{i}") for i in range(4)))
        for round_ in range(args.rounds):
            for name, fetch in fetches.items():
                await measure(fetch, figures[name])
                print(f"round {round_ + 1}: {name} measured", flush=True)
            await static_p50(fetches, figures, args.static_runs)
        await browser.close()
    return figures


def report(figures: dict[str, Figures], site: dict[str, Page], args: argparse.Namespace) -> int:
    bodies = sum(len(site[f"/{k}/0"].body) for k in KINDS)
    boiler = sum(len(site[f"/{k}/0"].boilerplate) for k in KINDS)
    print(
        f"\n{len(KINDS)} kinds x {VARIANTS} pages on loopback ({', '.join(KINDS)}), "
        f"median of {args.rounds} round(s); p50 of {args.static_runs} static article crawls; "
        f"{args.chromium}\n"
    )
    print(
        f"| crawler | c=1 pages/s | c=4 pages/s | p50 static article | body probes kept "
        f"(of {bodies}) | boilerplate leaked (of {boiler}) | misses |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, f in figures.items():
        kept, leaked, notes = fidelity(f.texts, site)
        if f.extra:
            raw_kept, raw_leaked, _ = fidelity(f.extra, site)
            kept_cell, leak_cell = f"{kept} ({raw_kept} raw)", f"{leaked} ({raw_leaked} raw)"
        else:
            kept_cell, leak_cell = str(kept), str(leaked)
        print(
            f"| {name} | {statistics.median(f.c1):.2f} | {statistics.median(f.c4):.2f} | "
            f"{statistics.median(f.static_ms):.0f} ms | {kept_cell} | {leak_cell} | "
            f"{', '.join(notes) or '-'} |"
        )
    wait, hurry = figures["ours, wait_for_js"], figures["ours, no JS wait"]
    cost = statistics.median(wait.static_ms) - statistics.median(hurry.static_ms)
    kept, leaked, _ = fidelity(wait.texts, site)
    met = cost <= WAIT_BUDGET_MS and kept == bodies and leaked == 0
    print(
        f"\ntarget: wait_for_js costs a static article {cost:.0f} ms of p50 (<= "
        f"{WAIT_BUDGET_MS:.0f}); ours keeps {kept}/{bodies} body probes, leaks {leaked}: "
        f"{'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
