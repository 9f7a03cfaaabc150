"""What the load test sends: request bodies for each task, and which answers count as fine.

Kept free of Locust, whose import monkey-patches the whole process for gevent: the runner
and the tests import this, the locustfile builds its tasks on it.
"""

from __future__ import annotations

import base64
import io
import random
from functools import cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

# What an overloaded service may answer: a rate limit (429) or a clean refusal to queue more
# (503 RESOURCE_EXHAUSTED, or a model that cannot load). Anything else under load is a bug.
ALLOWED_STATUSES = frozenset({200, 429, 503})
CRAWL_URL_ENV = "HOMELAB_LOADTEST_CRAWL_URL"
STATUS_FILE_ENV = "HOMELAB_LOADTEST_STATUS_FILE"
EMBED_BATCH = 32

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The cat sits outside on the warm stone wall.",
    "Homelab servers hum quietly in the cupboard under the stairs.",
    "Triton batches requests from many clients into one forward pass.",
    "The heron stood in the shallow water of the mill pond all morning.",
    "Invoices are due on the first working day of each month.",
]
OCR_LINES = ["Hello Triton 2026", "Invoice 4711 due 2026-12-01"]


@cache
def ocr_image_b64() -> str:
    """A PNG of black text on white, like a scanned receipt (rendered once)."""
    font = ImageFont.load_default(size=36)
    image = Image.new("RGB", (640, 60 + 56 * len(OCR_LINES)), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(OCR_LINES):
        draw.text((24, 20 + 56 * row), line, fill="black", font=font)
    return _png_b64(image)


@cache
def caption_image_b64() -> str:
    """A small seeded noise PNG: the tiny test BLIP captions anything, and noise keeps the
    payload honest (it does not compress to nothing)."""
    rng = random.Random(0)
    pixels = bytes(rng.randrange(256) for _ in range(128 * 96 * 3))
    return _png_b64(Image.frombytes("RGB", (128, 96), pixels))


def _png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def embed_single_body() -> dict[str, Any]:
    return {"texts": [random.choice(SENTENCES)]}


def embed_batch_body() -> dict[str, Any]:
    # Numbered so the texts of one batch differ, as a real document's chunks would.
    return {"texts": [f"{random.choice(SENTENCES)} ({i})" for i in range(EMBED_BATCH)]}


def ocr_body() -> dict[str, Any]:
    return {"image": ocr_image_b64()}


def caption_body() -> dict[str, Any]:
    return {"image": caption_image_b64()}


def crawl_body(url: str) -> dict[str, Any]:
    return {"url": url}  # the defaults a client gets: wait_for_js on, no screenshot


def warm_up_requests(crawl_url: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, body): one of each kind of request the locustfile sends."""
    return [
        ("POST", "/api/embed", embed_single_body()),
        ("POST", "/api/embed", embed_batch_body()),
        ("POST", "/api/ocr", ocr_body()),
        ("POST", "/api/caption", caption_body()),
        ("POST", "/api/crawl", crawl_body(crawl_url)),
        ("GET", "/api/status", None),
    ]
