"""PDF pages through PDFium (pypdfium2): open, size, render, and read the text layer as lines.

PDFium is not thread-safe (one global library state): every call into it holds PDFIUM_LOCK,
and the callers run these functions in worker threads, never on the event loop.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from frontend.core.errors import APIError, InvalidRequest

PDFIUM_LOCK = threading.Lock()
POINTS_PER_INCH = 72.0
# PDFium's "password needed or wrong" load error (FPDF_ERR_PASSWORD).
_ERR_PASSWORD = 4
_LINE_BREAKS = {"\r", "\n"}


@dataclass(frozen=True)
class PageGeometry:
    """A page's pixel size at the chosen resolution (rotation applied, as rendered)."""

    scale: float  # pixels per PDF point
    width: int
    height: int

    @property
    def dpi(self) -> float:
        return round(self.scale * POINTS_PER_INCH, 2)


@dataclass
class TextLine:
    """One line of the text layer, its box in rendered pixels (axis-aligned, 4 corners)."""

    text: str
    box: list[list[float]]


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    """The document, or 400 if PDFium cannot read it (corrupt, truncated, password-protected)."""
    with PDFIUM_LOCK:
        try:
            return pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _ERR_PASSWORD:
                message = "the PDF is password-protected; send it unencrypted"
            else:
                message = "the PDF is corrupt or truncated (PDFium cannot read it)"
        raise InvalidRequest(message)


def close_pdf(document: pdfium.PdfDocument) -> None:
    with PDFIUM_LOCK:
        document.close()


def page_count(document: pdfium.PdfDocument) -> int:
    with PDFIUM_LOCK:
        return len(document)


def geometry(
    width_pt: float, height_pt: float, dpi: int, max_pixels: int, max_side: int
) -> PageGeometry:
    """Pixel size at `dpi`, scaled down (never failing) so the page fits the image limits."""
    scale = dpi / POINTS_PER_INCH
    width_pt, height_pt = max(width_pt, 1.0), max(height_pt, 1.0)
    scale = min(
        scale,
        math.sqrt(max_pixels / (width_pt * height_pt)),
        max_side / max(width_pt, height_pt),
    )
    # ceil as PDFium's renderer does; shave the scale until the rounded size fits too
    while scale > 0:
        width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
        if width * height <= max_pixels and max(width, height) <= max_side:
            return PageGeometry(scale, width, height)
        scale *= 0.999
    return PageGeometry(scale, 1, 1)  # pragma: no cover - a limit of 0 is refused by the config


def _page_error(number: int) -> APIError:
    return InvalidRequest(f"page {number}: PDFium cannot read it (corrupt page)", {"page": number})


def _load_page(document: pdfium.PdfDocument, number: int) -> pdfium.PdfPage:
    try:
        return document[number - 1]
    except (pdfium.PdfiumError, IndexError):
        raise _page_error(number) from None


@contextmanager
def _page(document: pdfium.PdfDocument, number: int) -> Iterator[pdfium.PdfPage]:
    """The page (1-based), under the PDFium lock, closed afterwards; PDFium's errors on it
    become the page's InvalidRequest."""
    with PDFIUM_LOCK:
        page = _load_page(document, number)
        try:
            yield page
        except pdfium.PdfiumError:
            raise _page_error(number) from None
        finally:
            page.close()


def page_geometry(
    document: pdfium.PdfDocument, number: int, dpi: int, max_pixels: int, max_side: int
) -> PageGeometry:
    with _page(document, number) as page:
        width_pt, height_pt = page.get_size()
    return geometry(width_pt, height_pt, dpi, max_pixels, max_side)


def render_page(document: pdfium.PdfDocument, number: int, size: PageGeometry) -> np.ndarray:
    """The page (1-based) as RGB uint8 [H, W, 3] at the geometry's scale, on white."""
    with _page(document, number) as page:
        bitmap = page.render(scale=size.scale, rev_byteorder=True, may_draw_forms=False)
        try:
            return np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8)  # own the memory
        finally:
            bitmap.close()


def text_layer(document: pdfium.PdfDocument, number: int, size: PageGeometry) -> list[TextLine]:
    """The page's text layer as lines with pixel boxes; empty when it has no text."""
    with _page(document, number) as page:
        textpage = page.get_textpage()
        try:
            return _lines(page, textpage, size)
        finally:
            textpage.close()


def _lines(
    page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, size: PageGeometry
) -> list[TextLine]:
    """Characters in the text layer's order, cut into lines where PDFium puts line breaks."""
    lines: list[TextLine] = []
    chars: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []

    def flush() -> None:
        text = " ".join("".join(chars).split())
        if text and boxes:
            lines.append(TextLine(text, _pixel_box(page, size, boxes)))
        chars.clear()
        boxes.clear()

    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        char = chr(code) if 0 < code < 0x110000 else ""
        if char in _LINE_BREAKS:
            flush()
            continue
        if not char or 0xD800 <= code <= 0xDFFF:
            continue  # unmapped glyph or a lone surrogate half
        chars.append(char)
        if not char.isspace():
            boxes.append(textpage.get_charbox(index))  # (left, bottom, right, top) in points
    flush()
    return lines


def _pixel_box(
    page: pdfium.PdfPage, size: PageGeometry, boxes: list[tuple[float, float, float, float]]
) -> list[list[float]]:
    """The union of the characters' boxes, mapped to rendered pixels (rotation included)."""
    left = min(b[0] for b in boxes)
    bottom = min(b[1] for b in boxes)
    right = max(b[2] for b in boxes)
    top = max(b[3] for b in boxes)
    corners = [_to_pixels(page, size, x, y) for x, y in ((left, top), (right, bottom))]
    x0, x1 = sorted(c[0] for c in corners)
    y0, y1 = sorted(c[1] for c in corners)
    x0, x1 = max(0.0, x0), min(float(size.width), x1)
    y0, y1 = max(0.0, y0), min(float(size.height), y1)
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _to_pixels(page: pdfium.PdfPage, size: PageGeometry, x: float, y: float) -> tuple[float, float]:
    # The same page-to-device transform the renderer uses (PDFium's own, /Rotate included).
    device_x, device_y = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page, 0, 0, size.width, size.height, 0, x, y, device_x, device_y)
    return float(device_x.value), float(device_y.value)
