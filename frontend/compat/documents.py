"""Document text for the routes whose request is the file itself: Open WebUI's "External"
loader's PUT /process here, Apache Tika's routes in compat.tika (both call `extract`). Images,
PDFs and TIFFs go through /api/ocr's pipeline (a PDF page's text layer without OCR, the cache,
the model choice); DOCX, XLSX and PPTX files are read by compat.office; text files come back as
they are, HTML files as their text (compat.document_text, run in the document sandbox)."""

from __future__ import annotations

import time
from email.message import Message
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response

from frontend.compat.document_text import read_here
from frontend.core.deps import RegistryDep
from frontend.core.errors import InvalidRequest, json_response
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.images.inputs import RawImages
from frontend.images.routes import OCR, run_images
from frontend.images.schemas import OcrOptions
from frontend.models.registry import ModelRegistry
from frontend.sandbox.pool import sandbox_of

router = APIRouter(tags=["documents"])
_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file itself, with its media type as Content-Type",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


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
    # The file's parsers run in the document sandbox: a parser bomb costs its limits, no more.
    async with sandbox_of(request.app).lease() as worker:
        here = await worker.call(read_here, data, declared, charset)
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
