"""Apache Tika server's routes, answered with compat.documents' text: PUT /tika (its Accept
picks plain text, XHTML or JSON) and PUT /tika/text (Open WebUI's Tika engine), and the
recursive-metadata PUT /rmeta[/xml|/html|/text|/ignore] that tika-python's parser.from_file
and from_buffer send (`/rmeta/text`), and Haystack's TikaDocumentConverter (`/rmeta/xml`, under
/tika/ too: its documented URL ends in /tika). A file is one document here: /rmeta's list has
one metadata dict, as Tika's has for a file without embedded files."""

from __future__ import annotations

import mimetypes
import re
import time
from email.message import Message
from html import escape
from typing import Any, Literal

from fastapi import APIRouter, Request, Response

from frontend.compat.documents import extract
from frontend.core.deps import RegistryDep
from frontend.core.errors import json_response
from frontend.core.openapi import INFERENCE_ERRORS, error_responses

router = APIRouter(tags=["documents"])
Handler = Literal["text", "xml", "html", "ignore"]
HANDLERS: dict[str, str] = {  # Tika's names for them, in X-TIKA:content_handler
    "text": "ToTextContentHandler",
    "xml": "ToXMLContentHandler",
    "html": "ToHTMLContentHandler",
    "ignore": "IgnoreContentHandler",
}
LANG_HEADER = "x-tika-ocrlanguage"  # Tika's per-request OCR language(s), e.g. eng+deu
PAGE_SEPARATOR = "\f"  # between the pages of extract's text
NAMED_HANDLERS: tuple[Handler, ...] = ("xml", "html", "text", "ignore")
# Characters XML 1.0 does not allow (a PDF's text may carry them): dropped from the XHTML.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_STRING = {"schema": {"type": "string"}}
_METADATA = {
    "type": "object",
    "description": "Tika's metadata keys: X-TIKA:content, Content-Type, Content-Length, "
    "X-TIKA:Parsed-By, resourceName (from Content-Disposition), xmpTPg:NPages, ...",
    "additionalProperties": True,
}
_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file itself, with its media type as Content-Type (or none: the "
        "type is then read from the bytes and the Content-Disposition filename)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_TIKA_TYPES = ("text/plain", "text/html", "text/xml", "application/xml", "application/json")


def filename(request: Request) -> str | None:
    """The file's name from Content-Disposition (RFC 2231's filename* too), as Tika reads it."""
    header = Message()
    header["content-disposition"] = request.headers.get("content-disposition", "")
    name = header.get_filename()
    if not name:
        return None
    if len(name) > 3 and name[:2] in ("b'", 'b"') and name[-1] == name[1]:
        # tika-python 3.3.2 without rfc6266 formats the name's bytes: filename=b'report.pdf'
        name = name[2:-1]
    return name.replace("\\", "/").rsplit("/", 1)[-1][:500] or None


def typed_by_name(request: Request, name: str | None) -> Request:
    """A request without Content-Type (tika-python sends none) typed by its file name, so an
    .html or .md file is read as one; the body is still unread."""
    if request.headers.get("content-type") or not name:
        return request
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        return request
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", guessed.encode("latin-1")))
    return Request({**request.scope, "headers": headers}, request.receive)


async def parse(request: Request, registry: RegistryDep, handler: Handler) -> dict[str, Any]:
    """Tika's metadata dict of the request's file, with its content as `handler` writes it."""
    started = time.perf_counter()
    name = filename(request)
    request = typed_by_name(request, name)
    found = await extract(request, registry, request.headers.get(LANG_HEADER))
    metadata: dict[str, Any] = {
        "Content-Type": found["content_type"],
        "Content-Length": str(len(await request.body())),
        "X-TIKA:Parsed-By": ["homelab-ai"],
        "X-TIKA:content_handler": HANDLERS[handler],
        "X-TIKA:embedded_depth": "0",
    }
    if name:
        metadata["resourceName"] = name
    if "pages" in found:
        metadata["xmpTPg:NPages"] = str(found["pages"])
    if handler == "text":
        metadata["X-TIKA:content"] = found["text"]
    elif handler != "ignore":
        metadata["X-TIKA:content"] = xhtml(found["text"], metadata, "pages" in found)
    metadata["X-TIKA:parse_time_millis"] = str(int((time.perf_counter() - started) * 1000))
    return metadata


def _paragraphs(text: str) -> str:
    """Blank-line separated blocks as <p> elements, their lines kept."""
    text = _NOT_XML.sub("", text.replace("\r\n", "\n"))
    blocks = [block.strip("\n") for block in text.split("\n\n")]
    return "".join(f"<p>{escape(block, quote=False)}</p>\n" for block in blocks if block.strip())


def xhtml(text: str, metadata: dict[str, Any], paged: bool) -> str:
    """The XHTML Tika's XML and HTML handlers write: metadata as <meta> in the head, and for
    PDFs and TIFFs each page in a <div class="page"> (what Haystack splits pages by)."""
    head = "".join(
        f'<meta name="{escape(key)}" content="{escape(_NOT_XML.sub("", value))}" />\n'
        for key, value in metadata.items()
        if isinstance(value, str)
    )
    title = escape(metadata.get("resourceName", ""), quote=False)
    if paged:
        pages = text.split(PAGE_SEPARATOR)
        body = "".join(f'<div class="page">{_paragraphs(page)}</div>\n' for page in pages)
    else:
        body = _paragraphs(text)
    return (
        '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
        f"{head}<title>{title}</title>\n</head>\n<body>{body}</body></html>"
    )


def preferred(accept: str | None, offered: tuple[str, ...]) -> str:
    """The offered media type the Accept header ranks highest (q values, then the most
    specific range); the first offered one when nothing offered is asked for, or no Accept."""
    best, best_q = offered[0], 0.0
    for media in offered:
        kind = media.split("/")[0]
        quality, specificity = 0.0, -1
        for part in (accept or "").split(","):
            fields = [field.strip() for field in part.split(";")]
            asked = fields[0].lower()
            rank = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(asked)
            if rank is None or rank < specificity:
                continue
            q = 1.0
            for field in fields[1:]:
                key, _, value = field.partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            quality, specificity = q, rank
        if quality > best_q:
            best, best_q = media, quality
    return best


def _rmeta_route(path: str, handler: Handler) -> None:
    async def rmeta(request: Request, registry: RegistryDep) -> Response:
        return json_response([await parse(request, registry, handler)])

    summary = (
        f"Apache Tika's recursive metadata ({handler} content): a list of one metadata dict "
        "with the file's content as `X-TIKA:content` (tika-python's parser, Haystack's "
        "TikaDocumentConverter)"
    )
    content = {"application/json": {"schema": {"type": "array", "items": _METADATA}}}
    router.add_api_route(
        path,
        rmeta,
        methods=["PUT"],
        responses={200: {"content": content}, **error_responses(*INFERENCE_ERRORS)},
        summary=summary,
        openapi_extra=_FILE_BODY,
        include_in_schema=not path.startswith("/tika/"),
        name=f"tika_rmeta_{handler}" + ("_under_tika" if path.startswith("/tika/") else ""),
    )


# Tika's /rmeta writes XHTML unless the path names a handler.
for _prefix in ("", "/tika"):
    _rmeta_route(f"{_prefix}/rmeta", "xml")
    for _handler in NAMED_HANDLERS:
        _rmeta_route(f"{_prefix}/rmeta/{_handler}", _handler)


@router.put(
    "/tika/text",
    responses={
        200: {"content": {"application/json": {"schema": _METADATA}}},
        **error_responses(*INFERENCE_ERRORS),
    },
    summary="Apache Tika's text extraction (Open WebUI's Tika engine): the file's metadata, its "
    "text as `X-TIKA:content`",
    openapi_extra=_FILE_BODY,
)
async def tika_text(request: Request, registry: RegistryDep) -> Response:
    return json_response(await parse(request, registry, "text"))


@router.put(
    "/tika",
    responses={
        200: {
            "description": "As the Accept header asks: text/plain (the default), text/html or "
            "text/xml (XHTML), application/json (the metadata, XHTML as `X-TIKA:content`)",
            "content": {
                "text/plain": _STRING,
                "text/html": _STRING,
                "text/xml": _STRING,
                "application/json": {"schema": _METADATA},
            },
        },
        **error_responses(*INFERENCE_ERRORS),
    },
    summary="Apache Tika's extraction: the file's text, or XHTML or JSON as Accept asks",
    openapi_extra=_FILE_BODY,
)
async def tika(request: Request, registry: RegistryDep) -> Response:
    media = preferred(request.headers.get("accept"), _TIKA_TYPES)
    handler: Handler = "text" if media == "text/plain" else "xml"
    metadata = await parse(request, registry, handler)
    if media == "application/json":
        return json_response(metadata)
    return Response(metadata["X-TIKA:content"], media_type=f"{media}; charset=utf-8")
