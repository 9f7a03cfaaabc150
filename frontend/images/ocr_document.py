"""POST /api/ocr for documents: a PDF's or multi-page TIFF's pages, read one Triton request each.

PDF pages with a text layer answer from it (no OCR: like OCRmyPDF's --skip-text) unless
`force_ocr`; the others are rendered at `dpi` and sent to the OCR model together, so Triton
batches them. At most PAGES_IN_FLIGHT rendered pages of one request are held at once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio
import numpy as np
import orjson
from fastapi import Request
from PIL import Image

from frontend.core.config import Settings, Task
from frontend.core.errors import InvalidRequest, request_id_of
from frontend.images import pdf
from frontend.images.cached import cached_outputs
from frontend.images.decode import ImageLimits
from frontend.images.document import DocumentKind, check_page_limit, parse_pages
from frontend.images.inputs import RawImages
from frontend.images.languages import choose_ocr_model
from frontend.images.pages import PagePlan, open_pages, page_image, plan_pages
from frontend.images.schemas import OcrOptions
from frontend.models.lifecycle import parse_keep_alive
from frontend.models.registry import ModelRegistry
from frontend.sandbox.pool import Lease
from frontend.tasks.ocr import OcrLine, ordered_result
from frontend.triton.codecs import image_input, strings

# Pages of one request rendered and in flight to Triton at once: enough for Triton to batch
# them, while a 50-page request at 200 DPI never holds more than ~90 MB of pixels.
PAGES_IN_FLIGHT = 8
T = TypeVar("T")
PAGE_SEPARATOR = "\f"  # between pages in the whole document's text, as pdftotext does


def _png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _text_layer_result(lines: list[pdf.TextLine]) -> dict[str, Any]:
    # The same reading order (blocks, columns, rows) as OCR output gets.
    return ordered_result([OcrLine(line.text, 1.0, line.box) for line in lines]).to_dict()


async def _all_or_none(work: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Every result in order; on a failure the rest are cancelled *and awaited*, so no page is
    still rendering in a thread when the caller closes the document."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_document(
    request: Request,
    registry: ModelRegistry,
    raw: RawImages,
    kind: DocumentKind,
    started: float,
    lease: Lease,
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    options: OcrOptions = raw.options
    entry, chosen = choose_ocr_model(registry.catalog, options.model, options.lang)
    keep_alive = parse_keep_alive(options.keep_alive)
    parameters = chosen or None
    dpi = options.dpi or settings.ocr.pdf_dpi
    if dpi > settings.ocr.max_pdf_dpi:
        raise InvalidRequest(f"invalid request: dpi: must be at most {settings.ocr.max_pdf_dpi}")
    limits = ImageLimits(settings.limits.max_image_pixels, settings.limits.max_image_side)
    # The document stays open in the lease's sandbox worker (its parsers' limits bound it);
    # its calls run there one at a time, while the pages' OCR runs concurrently.
    count = await lease.call(open_pages, kind, dpi, limits)
    if count < 1:
        raise InvalidRequest("the document has no pages")
    numbers = parse_pages(options.pages, count)
    check_page_limit(len(numbers), count, settings.limits.max_document_pages)
    plans = await lease.call(plan_pages, numbers, options.force_ocr)
    slots = asyncio.Semaphore(PAGES_IN_FLIGHT)

    async def ocr(image: np.ndarray) -> str:
        output = await registry.infer(
            entry, [image_input(image)], ["RESULT"], parameters, keep_alive
        )
        return strings(output, "RESULT")[0]

    async def read(plan: PagePlan) -> dict[str, Any]:
        async with slots:
            image: np.ndarray | None = None
            if plan.text_layer is None or options.page_images:
                image = await lease.call(page_image, plan)
            if plan.text_layer is not None:
                result, page_source = _text_layer_result(plan.text_layer), "text-layer"
            else:
                assert image is not None
                found = await cached_outputs(request, Task.OCR, entry, parameters, [image], ocr)
                result, page_source = orjson.loads(found[0]), "ocr"
            page: dict[str, Any] = {"page": plan.number, **result, "source": page_source}
            if plan.geometry is not None:
                page.update(
                    width=plan.geometry.width,
                    height=plan.geometry.height,
                    dpi=plan.geometry.dpi,
                )
            elif image is not None:
                page.update(width=int(image.shape[1]), height=int(image.shape[0]), dpi=None)
            if options.page_images and image is not None:
                page["image"] = await anyio.to_thread.run_sync(_png_data_url, image)
            return page

    pages = await _all_or_none([read(plan) for plan in plans])
    body = {
        "request_id": request_id_of(request),
        "text": PAGE_SEPARATOR.join(page["text"] for page in pages),
        "pages": pages,
        "page_count": count,
        "model_used": entry.id,
        "processing_time_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    return body
