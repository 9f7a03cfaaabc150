"""`/api/ocr` against the Tesseract CLI on the same generated document pages, for bench_images.

Tesseract runs as one `tesseract IMAGE stdout --psm 3` process per image with
OMP_THREAD_LIMIT=1 (single-threaded), as many processes at once as the API has clients.
Both sides start from the same PNG bytes; each page has its true text (tests/ocr_pages.py),
so both get a character error rate. The two take turns (`compare`), one pass over the pages
at a time, so both meet the same neighbours on a shared machine. The `tesseract` binary is
optional: without it the comparison prints how to install it and reports only our column.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
from PIL import Image

from tests import ocr_pages
from tests.images import encode
from tools.benchlib import closed_loop, cpu_seconds

INSTALL_HINT = "apt-get install -y tesseract-ocr  (Debian/Ubuntu; tesseract 5.x, English)"


@dataclass
class Page:
    name: str
    png: bytes
    truth: str


@dataclass
class EngineResult:
    """images/s and CPU seconds per image for each concurrency, and the text each page came
    back with (from the first run). CPU seconds are counted over the engine's own processes
    (Tesseract's, or the service's whole process tree), so they hold up on a shared machine
    where images/s swings with the neighbours' load."""

    rates: dict[int, float] = field(default_factory=dict)
    cpu_per_image: dict[int, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    # seconds per page at concurrency 1 (the fastest of its passes)
    seconds: dict[str, float] = field(default_factory=dict)
    # totals over the runs so far, per concurrency: calls, wall seconds, CPU seconds
    totals: dict[int, tuple[int, float, float]] = field(default_factory=dict)
    # the service's CPU seconds by part (frontend, tritonserver, model stubs), per concurrency
    parts: dict[int, dict[str, float]] = field(default_factory=dict)

    def record(self, clients: int, calls: int, seconds: float, cpu: float | None) -> None:
        done, took, used = self.totals.get(clients, (0, 0.0, 0.0))
        done, took, used = done + calls, took + seconds, used + (cpu or 0.0)
        self.totals[clients] = (done, took, used)
        self.rates[clients] = done / took
        if cpu is not None:
            self.cpu_per_image[clients] = used / done

    def record_parts(self, clients: int, before: dict[str, float], after: dict[str, float]) -> None:
        parts = self.parts.setdefault(clients, {})
        for role, seconds in after.items():
            parts[role] = parts.get(role, 0.0) + seconds - before.get(role, 0.0)

    def timed(self, clients: int, name: str, began: float) -> None:
        if clients == 1:
            took = time.perf_counter() - began
            self.seconds[name] = min(self.seconds.get(name, took), took)

    def cers(self, pages: list[Page]) -> dict[str, float]:
        return {p.name: ocr_pages.cer(self.texts.get(p.name, ""), p.truth) for p in pages}


# --pages: issue #26's 13 kinds (the peers' comparison), or issue #16's 9 pages.
PAGE_SETS = {"peers": ocr_pages.peer_set, "issue16": ocr_pages.issue_set}


def document_pages(kind: str = "peers") -> list[Page]:
    """A generated page set with true texts (PAGE_SETS): "peers" has a receipt, small UI text,
    two columns, rotations, low contrast, blur with noise, white on dark, a dense page, a table,
    a banner and an 11 px paragraph; "issue16" columns, skew, dense, table, receipt, screenshot."""
    return [
        Page(name, encode(Image.fromarray(array)), truth)
        for name, (array, truth) in PAGE_SETS[kind]()
    ]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tesseract_binary() -> str | None:
    return shutil.which("tesseract")


async def _tesseract(binary: str, path: Path) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    process = await asyncio.create_subprocess_exec(
        binary,
        str(path),
        "stdout",
        "--psm",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"tesseract failed ({process.returncode}): {err.decode()[-300:]}")
    return out.decode()


async def run_tesseract(
    binary: str,
    pages: list[Page],
    work: Path,
    concurrencies: list[int],
    passes: int,
    result: EngineResult | None = None,
) -> EngineResult:
    """`result`: add to these figures (interleaved runs), else a new one."""
    work.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, page in enumerate(pages):
        paths.append(work / f"page{i}.png")
        paths[-1].write_bytes(page.png)
    result = EngineResult() if result is None else result

    for clients in concurrencies:

        async def call(i: int, clients: int = clients) -> int:
            page, began = i % len(pages), time.perf_counter()
            text = await _tesseract(binary, paths[page])
            result.texts.setdefault(pages[page].name, text)
            result.timed(clients, pages[page].name, began)
            return 1

        cpu = children_cpu_seconds()
        load = await closed_loop(clients, None, call, calls=passes * len(pages))
        result.record(clients, load.calls, load.seconds, children_cpu_seconds() - cpu)
    return result


async def run_api(
    url: str,
    pages: list[Page],
    concurrencies: list[int],
    passes: int,
    pid: int | None = None,
    result: EngineResult | None = None,
) -> EngineResult:
    """`pid`: the service's process, whose tree's CPU time is counted (none if None);
    `result`: add to these figures (interleaved runs), else a new one."""
    bodies = [{"image": base64.b64encode(p.png).decode()} for p in pages]
    result = EngineResult() if result is None else result
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for clients in concurrencies:

            async def call(i: int, clients: int = clients) -> int:
                page, began = i % len(pages), time.perf_counter()
                async with session.post(f"{url}/api/ocr", json=bodies[page]) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:300]}")
                    answer = await r.json()
                result.texts.setdefault(pages[page].name, answer.get("text") or "")
                result.timed(clients, pages[page].name, began)
                return 1

            cpu = tree_cpu_seconds(pid) if pid is not None else 0.0
            parts = cpu_seconds(pid) if pid is not None else {}
            load = await closed_loop(clients, None, call, calls=passes * len(pages))
            used = tree_cpu_seconds(pid) - cpu if pid is not None else None
            result.record(clients, load.calls, load.seconds, used)
            if pid is not None:
                result.record_parts(clients, parts, cpu_seconds(pid))
    return result


async def compare(
    url: str,
    pid: int,
    binary: str | None,
    pages: list[Page],
    work: Path,
    concurrencies: list[int],
    passes: int,
) -> tuple[EngineResult, EngineResult | None]:
    """`/api/ocr` and Tesseract interleaved: one pass over the pages each, per concurrency,
    taking turns at going first, so that both meet the same neighbours on a shared machine
    (run one after the other, one side got a busy minute and the other a quiet one)."""
    ours, theirs = EngineResult(), EngineResult() if binary is not None else None
    for turn in range(passes):
        for clients in concurrencies:
            runs = [run_api(url, pages, [clients], 1, pid, ours)]
            if binary is not None:
                work_dir = work / "tesseract"
                runs.append(run_tesseract(binary, pages, work_dir, [clients], 1, theirs))
            for run in runs if turn % 2 == 0 else runs[::-1]:
                await run
    return ours, theirs


def report(
    pages: list[Page], ours: EngineResult, tesseract: EngineResult | None, passes: int
) -> None:
    """Print the side-by-side table (markdown, ready for the README)."""
    print(
        f"\nOCR vs Tesseract, {len(pages)} generated pages, {passes} pass(es) over them per "
        "concurrency (Tesseract: 1 thread per process, --psm 3, one process per client)"
    )
    if tesseract is None:
        print("  Tesseract column skipped (--no-tesseract, or no `tesseract` binary)")
    print("| | ours (`/api/ocr`) | Tesseract | ours / Tesseract |")
    print("| --- | --- | --- | --- |")
    for clients in ours.rates:
        mine = ours.rates[clients]
        if tesseract is not None:
            theirs = tesseract.rates[clients]
            cells = f"{theirs:.2f} | {mine / theirs:.2f}x"
        else:
            cells = "- | -"
        print(f"| images/s, concurrency {clients} | {mine:.2f} | {cells} |")
    for clients in ours.cpu_per_image:
        mine = ours.cpu_per_image[clients]
        if tesseract is not None and clients in tesseract.cpu_per_image:
            theirs = tesseract.cpu_per_image[clients]
            cells = f"{theirs:.2f} | {mine / theirs:.2f}x"
        else:
            cells = "- | -"
        print(f"| CPU s per image, concurrency {clients} | {mine:.2f} | {cells} |")
    for clients, parts in ours.parts.items():
        done = ours.totals[clients][0]
        split = ", ".join(f"{role} {seconds / done:.3f}" for role, seconds in parts.items())
        print(f"| ours' CPU s per image by part, concurrency {clients} | {split} | | |")
    for page in pages:
        if page.name not in ours.seconds:
            continue
        mine = ours.seconds[page.name]
        theirs_s = tesseract.seconds.get(page.name) if tesseract is not None else None
        cells = f"{theirs_s:.2f} | {mine / theirs_s:.2f}x" if theirs_s else "- | -"
        print(f"| seconds, {page.name} (concurrency 1) | {mine:.2f} | {cells} |")
    our_cer = ours.cers(pages)
    their_cer = tesseract.cers(pages) if tesseract is not None else {}
    for page in pages:
        theirs_text = f"{their_cer[page.name]:.3f}" if their_cer else "-"
        print(f"| CER, {page.name} | {our_cer[page.name]:.3f} | {theirs_text} | |")
    theirs_mean = f"{statistics.mean(their_cer.values()):.3f}" if their_cer else "-"
    print(f"| mean CER | {statistics.mean(our_cer.values()):.3f} | {theirs_mean} | |")
