"""The image and document parsing that /api/ocr, /api/caption and the document routes run in
the document sandbox (frontend.sandbox): a request's files are sent to its worker once
(`classify`), then decoded by index, or opened as a document whose pages are planned and
rendered one call at a time while the PDF stays open in the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from frontend.images import pdf
from frontend.images.decode import ImageLimits, decode_image
from frontend.images.document import DocumentKind, find_document, tiff_frame_count, tiff_frames
from frontend.sandbox.worker import session


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


# What the sandbox runs; each needs `classify` first in the same lease (the files live there).
def classify(
    blobs: list[bytes], types: list[str | None], single: bool, accepted: bool
) -> DocumentKind | None:
    """Keep the request's files in the worker; the kind of its document, if it sent one."""
    session()["files"] = blobs
    return find_document(blobs, types, single, accepted)


def decode_file(index: int, limits: ImageLimits, fit_within: int | None) -> np.ndarray:
    return decode_image(session()["files"][index], index, limits, fit_within)


def open_pages(kind: DocumentKind, dpi: int, limits: ImageLimits) -> int:
    """Open the request's document (its only file); its page count."""
    data = session()["files"][0]
    source = PdfPages(data, dpi, limits) if kind is DocumentKind.PDF else TiffPages(data, limits)
    session()["pages"] = source
    return source.count


def plan_pages(numbers: list[int], force_ocr: bool) -> list[PagePlan]:
    pages: PageSource = session()["pages"]
    return pages.plan(numbers, force_ocr)


def page_image(plan: PagePlan) -> np.ndarray:
    pages: PageSource = session()["pages"]
    return pages.image(plan)
