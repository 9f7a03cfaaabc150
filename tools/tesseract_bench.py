"""`/api/ocr` against the Tesseract CLI on the same generated document pages, for bench_images.

Tesseract runs as one `tesseract IMAGE stdout --psm 3` process per image with
OMP_THREAD_LIMIT=1 (single-threaded), as many processes at once as the API has clients.
Both sides start from the same PNG bytes; each page has its true text (tests/ocr_pages.py),
so both get a character error rate. The `tesseract` binary is optional: without it the
comparison prints how to install it and reports only our column.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from tests import ocr_pages
from tests.images import encode
from tools.benchlib import closed_loop

INSTALL_HINT = "apt-get install -y tesseract-ocr  (Debian/Ubuntu; tesseract 5.x, English)"


@dataclass
class Page:
    name: str
    png: bytes
    truth: str


@dataclass
class EngineResult:
    """images/s per concurrency and the text each page came back with (from the first run)."""

    rates: dict[int, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def cers(self, pages: list[Page]) -> dict[str, float]:
        return {p.name: ocr_pages.cer(self.texts.get(p.name, ""), p.truth) for p in pages}


def document_pages() -> list[Page]:
    """The ocr_pages set: two columns, rotated -5/+5 degrees, dense 3000x2000, invoice table."""
    made: list[tuple[str, tuple[np.ndarray, str]]] = [
        ("two columns", ocr_pages.two_columns()),
        ("rotated -5", ocr_pages.rotated(-5)),
        ("rotated +5", ocr_pages.rotated(5)),
        ("dense 3000x2000", ocr_pages.dense()),
        ("invoice table", ocr_pages.table()),
    ]
    return [Page(name, encode(Image.fromarray(array)), truth) for name, (array, truth) in made]


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
    binary: str, pages: list[Page], work: Path, concurrencies: list[int], passes: int
) -> EngineResult:
    work.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, page in enumerate(pages):
        paths.append(work / f"page{i}.png")
        paths[-1].write_bytes(page.png)
    result = EngineResult()

    for clients in concurrencies:

        async def call(i: int) -> int:
            page = i % len(pages)
            text = await _tesseract(binary, paths[page])
            result.texts.setdefault(pages[page].name, text)
            return 1

        load = await closed_loop(clients, None, call, calls=passes * len(pages))
        result.rates[clients] = load.rate
    return result


async def run_api(
    url: str, pages: list[Page], concurrencies: list[int], passes: int
) -> EngineResult:
    bodies = [{"image": base64.b64encode(p.png).decode()} for p in pages]
    result = EngineResult()
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for clients in concurrencies:

            async def call(i: int) -> int:
                page = i % len(pages)
                async with session.post(f"{url}/api/ocr", json=bodies[page]) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:300]}")
                    answer = await r.json()
                result.texts.setdefault(pages[page].name, answer.get("text") or "")
                return 1

            load = await closed_loop(clients, None, call, calls=passes * len(pages))
            result.rates[clients] = load.rate
    return result


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
    our_cer = ours.cers(pages)
    their_cer = tesseract.cers(pages) if tesseract is not None else {}
    for page in pages:
        theirs_text = f"{their_cer[page.name]:.3f}" if their_cer else "-"
        print(f"| CER, {page.name} | {our_cer[page.name]:.3f} | {theirs_text} | |")
    theirs_mean = f"{statistics.mean(their_cer.values()):.3f}" if their_cer else "-"
    print(f"| mean CER | {statistics.mean(our_cer.values()):.3f} | {theirs_mean} | |")
