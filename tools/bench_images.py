"""Image endpoints, side by side in one run: OCR through the API vs RapidOCR in-process, OCR
through the API vs Tesseract on generated document pages, and caption batching (one request
of 8 images vs 8 sequential requests) with the tiny BLIP.

    python -m tools.bench_images [--seconds 8] [--rounds 3] [--clients 4]
                                 [--passes 2] [--concurrency 1 4] [--no-tesseract]
                                 [--tesseract-only] [--layout INSTANCESxTHREADS]
                                 [--pages peers|issue16]

Builds the tiny test models into a temporary data dir, starts `homelab-ai serve` with
RapidOCR (instances x threads as config.yaml ships it, or --layout's) and the tiny BLIP, and prints
images/s and ratios; `--tesseract-only` runs just the /api/ocr vs Tesseract comparison.
Both OCR paths start from the same encoded PNGs, so both include decoding. The Tesseract
comparison (tools/tesseract_bench.py) needs the optional `tesseract` binary; without it that
column is skipped with an install hint.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFont

from tools.benchlib import closed_loop, running_service
from tools.build_test_models import build_test_models
from tools.tesseract_bench import (
    INSTALL_HINT,
    PAGE_SETS,
    compare,
    document_pages,
    report,
    tesseract_binary,
)

# This checkout: the service and Triton's model stubs run its code, not an installed copy's.
REPO = Path(__file__).resolve().parents[1]

LINES = [
    ["Hello Triton 2026"],
    ["TOTAL 12.50", "CASH 20.00"],
    ["Invoice 4711", "Due 2026-12-01", "Amount 99.00 EUR"],
    ["The quick brown fox", "jumps over the lazy dog"],
]


def documents() -> list[bytes]:
    import cv2

    font_path = Path(cv2.__file__).parent / "qt" / "fonts" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_path), 36)
    pages = []
    for lines in LINES:
        image = Image.new("RGB", (640, 60 + 56 * len(lines)), "white")
        draw = ImageDraw.Draw(image)
        for row, text in enumerate(lines):
            draw.text((24, 20 + 56 * row), text, fill="black", font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pages.append(buffer.getvalue())
    return pages


def ocr_in_process(pages: list[bytes], seconds: float, threads: int) -> float:
    """RapidOCR called directly on the same bytes (decode included), one image at a time."""
    from frontend.tasks.ocr import load_ocr_engine

    engine = load_ocr_engine("rapidocr/PP-OCRv4", threads=threads)
    arrays = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in pages]
    engine.read(arrays[:1])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        image = np.asarray(Image.open(io.BytesIO(pages[done % len(pages)])).convert("RGB"))
        engine.read([image])
        done += 1
    return done / (time.perf_counter() - start)


async def ocr_api(url: str, pages: list[bytes], clients: int, seconds: float) -> float:
    bodies = [{"image": base64.b64encode(p).decode()} for p in pages]
    async with aiohttp.ClientSession() as session:

        async def call(i: int) -> int:
            async with session.post(f"{url}/api/ocr", json=bodies[i % len(bodies)]) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
            return 1

        return (await closed_loop(clients, seconds, call)).rate


async def caption_timings(url: str, images: list[str], repeats: int) -> tuple[float, float]:
    """Seconds for one request with all images vs one request per image, sequentially."""
    batched, sequential = [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(repeats):
            start = time.perf_counter()
            async with session.post(f"{url}/api/caption", json={"batch": images}) as r:
                await r.read()
            batched.append(time.perf_counter() - start)
            start = time.perf_counter()
            for image in images:
                async with session.post(f"{url}/api/caption", json={"image": image}) as r:
                    await r.read()
            sequential.append(time.perf_counter() - start)
    return statistics.median(batched), statistics.median(sequential)


def layout(text: str) -> tuple[int, int]:
    """--layout's "2x1": (instances, threads)."""
    try:
        instances, threads = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected INSTANCESxTHREADS, e.g. 2x1: {text!r}"
        ) from None
    if instances < 1 or threads < 1:
        raise argparse.ArgumentTypeError(f"instances and threads must be >= 1: {text!r}")
    return instances, threads


def shipped_ocr_entry(override: tuple[int, int] | None = None) -> dict[str, Any]:
    """The built-in OCR model as config.yaml ships it (instances x threads, unless `override`
    gives them), so the bench measures what a fresh install runs."""
    shipped = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    [entry] = [e for e in shipped["models"]["ocr"] if e["hf_model"] == "rapidocr/PP-OCRv4"]
    return {
        "id": "rapidocr",
        "hf_model": "rapidocr/PP-OCRv4",
        "instances": override[0] if override else entry.get("instances", 1),
        "threads": override[1] if override else entry.get("threads", 1),
        # Shipped OCR unloads after 5 idle seconds; the in-process rounds would make the API
        # rounds time reloads instead of serving.
        "keep_alive_seconds": 600,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--passes", type=int, default=2, help="passes over the document pages per concurrency"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-tesseract", action="store_true", help="skip the Tesseract column")
    parser.add_argument(
        "--tesseract-only",
        action="store_true",
        help="only the /api/ocr vs Tesseract comparison (no in-process rounds, no captions)",
    )
    parser.add_argument(
        "--pages", choices=sorted(PAGE_SETS), default="peers", help="the page set for Tesseract"
    )
    parser.add_argument(
        "--layout",
        type=layout,
        help="RapidOCR's instances x threads instead of config.yaml's, e.g. 2x1 or 1x2",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    data_dir = work / "data"
    ids = {} if args.tesseract_only else build_test_models(data_dir)
    pages = documents()
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(8)]
    captions = []
    for array in noise:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        captions.append(base64.b64encode(buffer.getvalue()).decode())
    models: dict[str, list[dict[str, Any]]] = {"ocr": [shipped_ocr_entry(args.layout)]}
    if not args.tesseract_only:
        caption = {"id": "tiny-blip", "hf_model": ids["caption"], "max_new_tokens": 20}
        models["image_caption"] = [caption]
    rates: dict[str, list[float]] = {"in-process 1 thread": [], "in-process 2 threads": []}
    rates["api"] = []
    with running_service(work, data_dir, models, stub_code=REPO) as (url, service):
        asyncio.run(ocr_api(url, pages, 1, 1))  # loads RapidOCR
        if not args.tesseract_only:
            asyncio.run(caption_timings(url, captions[:1], 1))  # loads BLIP
        for round_ in range(0 if args.tesseract_only else args.rounds):
            rates["in-process 1 thread"].append(ocr_in_process(pages, args.seconds, 1))
            rates["in-process 2 threads"].append(ocr_in_process(pages, args.seconds, 2))
            rates["api"].append(asyncio.run(ocr_api(url, pages, args.clients, args.seconds)))
            print(
                f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in rates.items())
            )
        if not args.tesseract_only:
            batched, sequential = asyncio.run(caption_timings(url, captions, 5))
        binary = None if args.no_tesseract else tesseract_binary()
        if binary is None and not args.no_tesseract:
            print(f"tesseract not found, skipping its column; install it with: {INSTALL_HINT}")
        doc_pages = document_pages(args.pages)
        ours, theirs = asyncio.run(
            compare(url, service.pid, binary, doc_pages, work, args.concurrency, args.passes)
        )

    entry = models["ocr"][0]
    print(f"\n/api/ocr: RapidOCR, {entry['instances']} instance(s) x {entry['threads']} thread(s)")
    if args.tesseract_only:
        report(doc_pages, ours, theirs, args.passes)
        return 0
    median = {k: statistics.median(v) for k, v in rates.items()}
    best = max(median["in-process 1 thread"], median["in-process 2 threads"])
    print(f"\nOCR, RapidOCR PP-OCRv4, {len(pages)} rendered documents; medians of {args.rounds}")
    for name, value in median.items():
        print(f"  {name:22} {value:6.1f} images/s")
    print(
        f"  ratio api ({args.clients} clients) / best in-process = {median['api'] / best:.2f}"
        "  (target >= 0.8)"
    )
    print("Caption, tiny BLIP, 8 images (median of 5):")
    for label, seconds in (
        ("one request with a batch of 8", batched),
        ("8 sequential requests", sequential),
    ):
        print(f"  {label:30} {seconds * 1000:7.1f} ms ({8 / seconds:.1f} images/s)")
    print(f"  batching gain: {sequential / batched:.2f}x")
    report(doc_pages, ours, theirs, args.passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
