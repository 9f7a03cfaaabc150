"""Text of Office Open XML files (DOCX, XLSX, PPTX) for the document routes (/tika, /process):
python-docx, openpyxl and python-pptx read them, in the document sandbox. These are ZIP files:
their members' declared sizes are checked, then measured while inflating them in small steps
before a library unpacks them, so a ZIP bomb (or a directory lying about sizes) is a 400
after at most MAX_UNPACKED_BYTES of inflating, not a full memory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

from frontend.core.errors import InvalidRequest

ZIP_MAGIC = b"PK\x03\x04"
MAX_UNPACKED_BYTES = 100 * 2**20  # all members together, unpacked
MAX_MEMBERS = 10_000
_INFLATE_STEP = 2**20  # bytes of output per zlib call while measuring a member
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
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
    for member in members:
        if _inflated_size(data, member) != member.file_size:
            raise InvalidRequest(
                f"the {kind[0].upper()} file is damaged: its part '{member.filename[:100]}' "
                f"does not unpack to the {member.file_size} bytes its directory declares"
            )
    return kind


def _inflated_size(data: bytes, member: zipfile.ZipInfo) -> int | None:
    """The member's real unpacked size, inflated in small steps and given up one step past
    the declared size: zipfile's read() inflates a member in one call, up to 2 GiB, whatever
    the directory says (a 4,000-byte part that inflated to 1.1 GiB cost 2 GB of memory
    before failing its CRC). None when the member cannot be measured."""
    header = data[member.header_offset : member.header_offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or not header.startswith(ZIP_MAGIC):
        return None
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    start = member.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    packed = data[start : start + member.compress_size]
    if member.compress_type == zipfile.ZIP_STORED:
        return len(packed)
    if member.compress_type != zipfile.ZIP_DEFLATED:
        return None  # Office files use deflate; other methods are not read
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0
    try:
        while not inflater.eof and size <= member.file_size:
            out = inflater.decompress(packed, _INFLATE_STEP)
            packed = inflater.unconsumed_tail
            size += len(out)
            if not out and not packed:
                break
    except zlib.error:
        return None
    return size


def _docx(data: bytes) -> str:
    from docx import Document
    from docx.table import Table

    lines: list[str] = []
    for block in Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                lines.append("\t".join(_row_cells(row, block)))
        elif block.text.strip():
            lines.append(block.text)
    return "\n".join(lines)


def _row_cells(row: Any, table: Any) -> list[str]:
    """Each <w:tc> of the row once, as Tika gives them. python-docx's `row.cells` repeats a
    cell once per grid column it spans (a gridSpan of 2,000,000 took 56 CPU-s) and walks up
    the rows for each vertically merged cell; a merged cell's continuations read empty here."""
    from docx.table import _Cell

    return [
        "" if tc.vMerge == "continue" else _Cell(tc, table).text.strip() for tc in row._tr.tc_lst
    ]


def _xlsx(data: bytes) -> str:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheets = []
    try:
        for sheet in workbook.worksheets:
            # The declared dimension is the sheet's own claim: read-only mode pads every row
            # to it (A1:XFD300000 and one cell: 4.9 billion cells). Rows then end at their
            # last cell.
            sheet.reset_dimensions()
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
    except (InvalidRequest, MemoryError):  # MemoryError: the sandbox's limit, named there
        raise
    except Exception:  # the libraries raise many kinds for damaged files; none leaks out
        raise InvalidRequest(f"the {kind.upper()} file is damaged and cannot be read") from None
