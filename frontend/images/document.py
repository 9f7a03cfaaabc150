"""Multi-page inputs for OCR: what counts as a document, page ranges, and TIFF frames."""

from __future__ import annotations

import io
import re
import warnings
from enum import StrEnum

import numpy as np
from PIL import Image, ImageSequence

from frontend.core.errors import APIError, InvalidRequest
from frontend.images.decode import ImageLimits, size_problem

PDF_MAGIC = b"%PDF-"
# PDF readers (PDFium among them) accept the header anywhere in the first kilobyte.
PDF_HEADER_WINDOW = 1024
PDF_TYPES = {"application/pdf", "application/x-pdf"}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_RANGE = re.compile(r"^\s*(\d{1,7})\s*(?:(-)\s*(\d{1,7})?\s*)?$")
MAX_PAGES_CHARS = 200


class DocumentKind(StrEnum):
    PDF = "pdf"
    TIFF = "tiff"  # a TIFF with more than one frame (a single frame is a plain image)


def document_kind(data: bytes, declared_type: str | None) -> DocumentKind | None:
    """PDF by its header or declared type; TIFF when it holds several frames; else None."""
    if PDF_MAGIC in data[:PDF_HEADER_WINDOW] or (declared_type or "").lower() in PDF_TYPES:
        return DocumentKind.PDF
    if data[:4] in _TIFF_MAGIC and tiff_frame_count(data) > 1:
        return DocumentKind.TIFF
    return None


def tiff_frame_count(data: bytes) -> int:
    """Frames in a TIFF (1 if it cannot tell: the image decoder then reports the damage)."""
    try:
        with Image.open(io.BytesIO(data), formats=["TIFF"]) as image:
            return int(getattr(image, "n_frames", 1))
    except MemoryError:  # the sandbox's limit, named there
        raise
    except Exception:  # any damage: let decode_image give its usual clear error
        return 1


def parse_pages(spec: str | None, count: int) -> list[int]:
    """1-based page numbers, ascending and unique, from "1-3,5,8-" (None: every page).

    400 naming the `pages` option when the text is malformed or names a page past the end.
    """
    if spec is None:
        return list(range(1, count + 1))
    if len(spec) > MAX_PAGES_CHARS or not spec.strip():
        raise _bad_pages(
            f"write page numbers and ranges like 1-3,5,8- (at most {MAX_PAGES_CHARS} characters)"
        )
    chosen: set[int] = set()
    for part in spec.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise _bad_pages(f"'{part.strip()[:20]}' is not a page number or a range like 2-4")
        first = int(match.group(1))
        last = int(match.group(3)) if match.group(3) else (count if match.group(2) else first)
        if first < 1:
            raise _bad_pages("pages are numbered from 1")
        beyond = first if first > count else last if last > count else None
        if beyond is not None:
            plural = "s" if count != 1 else ""
            raise _bad_pages(
                f"page {beyond} is past the end; the document has {count} page{plural}",
                {"page_count": count},
            )
        if last < first:
            raise _bad_pages(f"range {first}-{last} runs backwards")
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def _bad_pages(message: str, details: dict[str, int] | None = None) -> APIError:
    return InvalidRequest(f"invalid request: pages: {message}", details)


def check_page_limit(selected: int, count: int, limit: int) -> None:
    if selected > limit:
        raise InvalidRequest(
            f"the request covers {selected} pages; the limit is {limit} "
            "(limits.max_document_pages): choose fewer with `pages`, e.g. pages=1-"
            f"{limit}",
            {"page_count": count, "selected_pages": selected, "limit": limit},
        )


def tiff_frames(data: bytes, numbers: list[int], limits: ImageLimits) -> list[np.ndarray]:
    """The chosen frames (1-based) as RGB uint8 [H, W, 3]; 400 naming the page if unusable."""
    wanted = set(numbers)
    frames: dict[int, np.ndarray] = {}
    number = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["TIFF"]) as image:
                for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                    if number not in wanted:
                        continue
                    problem = size_problem(*frame.size, limits)
                    if problem:
                        raise _bad_frame(number, problem)
                    frame.load()
                    frames[number] = np.asarray(frame.convert("RGB"), dtype=np.uint8)
                    if len(frames) == len(wanted):
                        break
    except APIError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bad_frame(number, "is too large to decode (decompression bomb)") from None
    except MemoryError:  # the sandbox's limit, named there
        raise
    except Exception:  # Pillow's ways of saying truncated or corrupt; keep them out of the reply
        raise _bad_frame(number, "is truncated or corrupt") from None
    return [frames[n] for n in numbers]


def _bad_frame(number: int, message: str) -> APIError:
    return InvalidRequest(f"page {number}: {message}", {"page": number})


def find_document(
    blobs: list[bytes], types: list[str | None], single: bool, accepted: bool
) -> DocumentKind | None:
    """The kind of the request's document, if it sent one; 400 where documents cannot go.

    Documents go one per request (alone in `image`, or as the only file); an endpoint that
    does not read documents (`accepted` false) refuses PDFs and keeps reading the first frame
    of a multi-page TIFF, as it always did.
    """
    for index, (data, declared) in enumerate(zip(blobs, types, strict=True)):
        kind = document_kind(data, declared)
        if kind is None:
            continue
        if not accepted:
            if kind is DocumentKind.PDF:
                raise InvalidRequest(
                    f"image {index}: is a PDF; POST /api/ocr reads PDF documents",
                    {"image_index": index},
                )
            continue
        if not single:
            raise InvalidRequest(
                f"image {index}: a document ({kind.value.upper()}) goes alone in a request "
                "(as `image`, or the only file), not in a batch",
                {"image_index": index},
            )
        return kind
    return None
