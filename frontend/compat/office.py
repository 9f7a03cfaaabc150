"""Text of Office Open XML files (DOCX, XLSX, PPTX) for the document routes (/tika, /process):
python-docx, openpyxl and python-pptx read them. These are ZIP files: their members' sizes
are checked before anything is unpacked, so a ZIP bomb is a 400, not a full memory."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from frontend.core.errors import InvalidRequest

ZIP_MAGIC = b"PK\x03\x04"
MAX_UNPACKED_BYTES = 100 * 2**20  # all members together, unpacked
MAX_MEMBERS = 10_000
# The part that tells each format apart, and its media type.
KINDS = {
    "word/document.xml": (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "xl/workbook.xml": (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "ppt/presentation.xml": (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
}


def office_kind(data: bytes) -> tuple[str, str] | None:
    """(kind, media type) of a DOCX/XLSX/PPTX, None for anything else; 400 for a ZIP that
    would unpack to too much."""
    if not data.startswith(ZIP_MAGIC):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    names = {member.filename for member in members}
    kind = next((found for part, found in KINDS.items() if part in names), None)
    if kind is None:
        return None
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_MEMBERS or unpacked > MAX_UNPACKED_BYTES:
        raise InvalidRequest(
            f"the {kind[0].upper()} file would unpack to {unpacked} bytes in {len(members)} "
            f"parts; the limit is {MAX_UNPACKED_BYTES} bytes"
        )
    return kind


def _docx(data: bytes) -> str:
    from docx import Document
    from docx.table import Table

    lines: list[str] = []
    for block in Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                lines.append("\t".join(cell.text.strip() for cell in row.cells))
        elif block.text.strip():
            lines.append(block.text)
    return "\n".join(lines)


def _xlsx(data: bytes) -> str:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheets = []
    try:
        for sheet in workbook.worksheets:
            rows = []
            for row in sheet.iter_rows(values_only=True):
                cells = ["" if value is None else str(value) for value in row]
                if any(cells):
                    rows.append("\t".join(cells).rstrip("\t"))
            sheets.append(f"# {sheet.title}\n" + "\n".join(rows))
    finally:
        workbook.close()
    return "\n\n".join(sheets)


def _pptx(data: bytes) -> str:
    from pptx import Presentation

    slides = []
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, start=1):
        texts: list[str] = []
        for shape in slide.shapes:
            texts.extend(_shape_text(shape))
        slides.append(f"# Slide {number}\n" + "\n".join(texts))
    return "\n\n".join(slides)


def _shape_text(shape: Any) -> list[str]:
    if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        return [shape.text_frame.text]
    if getattr(shape, "has_table", False):
        return ["\t".join(cell.text for cell in row.cells) for row in shape.table.rows]
    if hasattr(shape, "shapes"):  # a group
        return [text for inner in shape.shapes for text in _shape_text(inner)]
    return []


_READERS = {"docx": _docx, "xlsx": _xlsx, "pptx": _pptx}


def office_text(data: bytes, kind: str) -> str:
    """The file's text: paragraphs and tables (cells by tabs) in order; a workbook's sheets
    and a deck's slides each under a `# ` heading. 400 when the file cannot be read."""
    try:
        return _READERS[kind](data)
    except InvalidRequest:
        raise
    except Exception:  # the libraries raise many kinds for damaged files; none leaks out
        raise InvalidRequest(f"the {kind.upper()} file is damaged and cannot be read") from None
