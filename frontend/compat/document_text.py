"""What the document routes (/tika, /process) read without OCR: Office files (compat.office),
HTML and text files; and which files go to OCR instead (images, PDFs, TIFFs). Runs in the
document sandbox (frontend.sandbox): these parsers see the untrusted bytes."""

from __future__ import annotations

import io
import warnings
from typing import Any

import lxml.etree
import lxml.html
from PIL import Image

from frontend.compat.office import office_kind, office_text
from frontend.core.errors import InvalidRequest
from frontend.images.decode import SUPPORTED_FORMATS
from frontend.images.document import PDF_TYPES, document_kind

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/x-yaml",
    "application/yaml",
)
UNSUPPORTED = (
    "cannot read this file: send an image, a PDF, a TIFF, a DOCX, XLSX or PPTX file, or text "
    "(older Office formats and others are not read)"
)


def is_image(data: bytes) -> bool:
    """Whether Pillow recognises the bytes (header only: nothing is decoded here). A header
    claiming too many pixels is an image too: decoding it gives the clear 400."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS).close()
    except Image.DecompressionBombError:
        return True
    except Exception:  # Pillow's many ways of saying "not this format", or a damaged one
        return False
    return True


def _readable(data: bytes, declared: str | None) -> bool:
    """A document (PDF, multi-page TIFF) or an image, by its bytes (header reads only)."""
    return document_kind(data, declared) is not None or is_image(data)


def _html_text(html: str) -> str:
    """An HTML file's text, as Tika gives it: the whole document's (not a guess at its main
    article, as for crawled pages), without scripts and styles."""
    from frontend.crawl.extract import normalize_text  # lazily: it loads trafilatura (1.6 s)

    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return html
    for element in tree.xpath("//script|//style|//noscript|//template"):
        element.drop_tree()
    return normalize_text(tree.text_content())


def _as_text(data: bytes, declared: str | None, charset: str | None) -> str | None:
    """UTF-8, or the charset a text file declares; a text file that declares none and is not
    UTF-8 is read as Windows-1252 (what legacy .txt and .csv files mostly are). Bytes not
    declared as text must be UTF-8."""
    if b"\x00" in data:
        return None
    textual = declared is not None and (declared.startswith("text/") or declared in TEXT_TYPES)
    if charset and textual:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if not textual:
        return None
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return data.decode("latin-1")


def read_here(data: bytes, declared: str | None, charset: str | None) -> dict[str, Any] | None:
    """{text, content_type} of an Office, HTML or text file; None for what OCR reads (images,
    PDFs, TIFFs, and whatever is declared as one, so its errors say why); 400 for the rest."""
    office = office_kind(data)
    if office is not None:
        kind, media = office
        return {"text": office_text(data, kind), "content_type": media}
    claimed = declared is not None and (declared.startswith("image/") or declared in PDF_TYPES)
    if claimed or _readable(data, declared):
        return None
    text = _as_text(data, declared, charset)
    if text is None:
        raise InvalidRequest(UNSUPPORTED, {"content_type": (declared or "")[:100]})
    if declared in HTML_TYPES:
        text = _html_text(text)
    return {"text": text, "content_type": declared or "text/plain"}
