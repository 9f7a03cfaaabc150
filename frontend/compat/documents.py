"""Document text for Open WebUI's content extraction engines, whose request is the file itself:
Apache Tika's PUT /tika/text (JSON) and PUT /tika (plain text), and the "External" loader's
PUT /process. Images, PDFs and TIFFs go through /api/ocr's pipeline (a PDF page's text layer
without OCR, the cache, the model choice); DOCX, XLSX and PPTX files are read by compat.office;
text files come back as they are, HTML files as their text."""

from __future__ import annotations

import io
import time
import warnings
from email.message import Message
from typing import Any
from urllib.parse import unquote

import anyio
import lxml.etree
import lxml.html
from fastapi import APIRouter, Request, Response
from PIL import Image, UnidentifiedImageError

from frontend.compat.office import office_kind, office_text
from frontend.core.deps import RegistryDep
from frontend.core.errors import InvalidRequest, json_response
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.crawl.extract import normalize_text
from frontend.images.decode import SUPPORTED_FORMATS
from frontend.images.document import PDF_TYPES, document_kind
from frontend.images.inputs import RawImages
from frontend.images.routes import OCR, run_images
from frontend.images.schemas import OcrOptions
from frontend.models.registry import ModelRegistry

router = APIRouter(tags=["documents"])
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
_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file itself, with its media type as Content-Type",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_LANG_HEADER = "x-tika-ocrlanguage"  # Tika's per-request OCR language(s), e.g. eng+deu


def _is_image(data: bytes) -> bool:
    """Whether Pillow recognises the bytes (header only: nothing is decoded here)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS).close()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False
    return True


def _readable(data: bytes, declared: str | None) -> bool:
    """A document (PDF, multi-page TIFF) or an image, by its bytes (header reads only)."""
    return document_kind(data, declared) is not None or _is_image(data)


def _html_text(html: str) -> str:
    """An HTML file's text, as Tika gives it: the whole document's (not a guess at its main
    article, as for crawled pages), without scripts and styles."""
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


def _read_here(data: bytes, declared: str | None, charset: str | None) -> dict[str, Any] | None:
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


async def extract(request: Request, registry: ModelRegistry, lang: str | None) -> dict[str, Any]:
    """{text, content_type, pages?, model_used?} of the request's body."""
    started = time.perf_counter()
    data = await request.body()
    header = Message()  # the stdlib's parse of the header's parameters (quotes, case)
    header["content-type"] = request.headers.get("content-type", "")
    declared = str(header.get("content-type", "")).split(";")[0].strip().lower() or None
    charset = header.get_content_charset()
    if not data:
        raise InvalidRequest("the request body is empty: send the file itself")
    here = await anyio.to_thread.run_sync(_read_here, data, declared, charset)
    if here is not None:
        return here
    try:
        options = OcrOptions(lang=lang)
    except ValueError:
        raise InvalidRequest("the OCR language must be 1 to 100 characters") from None
    raw = RawImages([data], [declared], True, options)
    body = await run_images(request, registry, OCR, raw, started)
    found: dict[str, Any] = {
        "text": body["text"],
        "content_type": declared or "application/octet-stream",
        "model_used": body["model_used"],
    }
    if "pages" in body:
        found["pages"] = body["page_count"]
    return found


@router.put(
    "/tika/text",
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Apache Tika's text extraction (Open WebUI's Tika engine): the file's text as "
    "`X-TIKA:content`",
    openapi_extra=_FILE_BODY,
)
async def tika_text(request: Request, registry: RegistryDep) -> Response:
    found = await extract(request, registry, request.headers.get(_LANG_HEADER))
    body: dict[str, Any] = {
        "X-TIKA:content": found["text"],
        "Content-Type": found["content_type"],
        "X-TIKA:Parsed-By": ["homelab-ai"],
    }
    if "pages" in found:
        body["xmpTPg:NPages"] = str(found["pages"])
    return json_response(body)


@router.put(
    "/tika",
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Apache Tika's plain-text extraction: the file's text",
    openapi_extra=_FILE_BODY,
)
async def tika(request: Request, registry: RegistryDep) -> Response:
    found = await extract(request, registry, request.headers.get(_LANG_HEADER))
    return Response(found["text"], media_type="text/plain; charset=utf-8")


@router.put(
    "/process",
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Open WebUI's External document loader: `{page_content, metadata}` of the file "
    "(`?lang=` for OCR languages)",
    openapi_extra=_FILE_BODY,
)
async def process(request: Request, registry: RegistryDep, lang: str | None = None) -> Response:
    found = await extract(request, registry, lang)
    metadata: dict[str, Any] = {"content_type": found["content_type"]}
    filename = request.headers.get("x-filename")
    if filename:
        metadata["source"] = unquote(filename)[:500]
    for key in ("pages", "model_used"):
        if key in found:
            metadata[key] = found[key]
    return json_response({"page_content": found["text"], "metadata": metadata})
