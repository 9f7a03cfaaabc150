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
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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
from frontend.images.document import (
    DocumentKind,
    check_page_limit,
    parse_pages,
    tiff_frame_count,
    tiff_frames,
)
from frontend.images.inputs import RawImages
from frontend.images.languages import choose_ocr_model
from frontend.images.schemas import OcrOptions
from frontend.models.lifecycle import parse_keep_alive
from frontend.models.registry import ModelRegistry
from frontend.tasks.ocr import OcrLine, ordered_result
from frontend.triton.codecs import image_input, strings

# Pages of one request rendered and in flight to Triton at once: enough for Triton to batch
# them, while a 50-page request at 200 DPI never holds more than ~90 MB of pixels.
PAGES_IN_FLIGHT = 8
T = TypeVar("T")
PAGE_SEPARATOR = "\f"  # between pages in the whole document's text, as pdftotext does


@dataclass
class PagePlan:
    number: int
    geometry: pdf.PageGeometry | None  # PDF pages; TIFF frames are their own size
    text_layer: list[pdf.TextLine] | None  # the PDF's own text, when it is used


class PageSource(Protocol):
    count: int

    def plan(self, numbers: list[int], force_ocr: bool) -> list[PagePlan]: ...
    def image(self, plan: PagePlan) -> np.ndarray: ...
    def close(self) -> None: ...


class PdfPages:
    def __init__(self, data: bytes, dpi: int, limits: ImageLimits):
        self.document = pdf.open_pdf(data)
        self.dpi = dpi
        self.limits = limits
        try:
            self.count = pdf.page_count(self.document)
        except BaseException:
            pdf.close_pdf(self.document)
            raise

    def plan(self, numbers: list[int], force_ocr: bool) -> list[PagePlan]:
        plans = []
        for number in numbers:
            size = pdf.page_geometry(
                self.document, number, self.dpi, self.limits.max_pixels, self.limits.max_side
            )
            lines = None if force_ocr else pdf.text_layer(self.document, number, size)
            plans.append(PagePlan(number, size, lines or None))
        return plans

    def image(self, plan: PagePlan) -> np.ndarray:
        assert plan.geometry is not None
        return pdf.render_page(self.document, plan.number, plan.geometry)

    def close(self) -> None:
        pdf.close_pdf(self.document)


class TiffPages:
    def __init__(self, data: bytes, limits: ImageLimits):
        self.data = data
        self.limits = limits
        self.count = tiff_frame_count(data)

    def plan(self, numbers: list[int], force_ocr: bool) -> list[PagePlan]:
        return [PagePlan(number, None, None) for number in numbers]

    def image(self, plan: PagePlan) -> np.ndarray:
        return tiff_frames(self.data, [plan.number], self.limits)[0]

    def close(self) -> None:
        pass


def _png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _text_layer_result(lines: list[pdf.TextLine]) -> dict[str, Any]:
    # The same reading order (blocks, columns, rows) as OCR output gets.
    return ordered_result([OcrLine(line.text, 1.0, line.box) for line in lines]).to_dict()


def _pdfium_limiter(request: Request) -> anyio.CapacityLimiter:
    """One per app (it belongs to the app's event loop)."""
    state = request.app.state
    if getattr(state, "pdfium_limiter", None) is None:
        state.pdfium_limiter = anyio.CapacityLimiter(1)
    limiter: anyio.CapacityLimiter = state.pdfium_limiter
    return limiter


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
    data = raw.data[0]

    def open_source() -> PageSource:
        return PdfPages(data, dpi, limits) if kind is DocumentKind.PDF else TiffPages(data, limits)

    # PDFium runs one call at a time (pdf.PDFIUM_LOCK): its calls queue here, on the event
    # loop, rather than as blocked threads that would starve the shared thread pool.
    limiter = _pdfium_limiter(request) if kind is DocumentKind.PDF else None
    source = await anyio.to_thread.run_sync(open_source, limiter=limiter)
    try:
        if source.count < 1:
            raise InvalidRequest("the document has no pages")
        numbers = parse_pages(options.pages, source.count)
        check_page_limit(len(numbers), source.count, settings.limits.max_document_pages)
        plans = await anyio.to_thread.run_sync(
            source.plan, numbers, options.force_ocr, limiter=limiter
        )
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
                    image = await anyio.to_thread.run_sync(source.image, plan, limiter=limiter)
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
    finally:
        await anyio.to_thread.run_sync(source.close, limiter=limiter)
    body = {
        "request_id": request_id_of(request),
        "text": PAGE_SEPARATOR.join(page["text"] for page in pages),
        "pages": pages,
        "page_count": source.count,
        "model_used": entry.id,
        "processing_time_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    return body
