"""Parser bombs and damaged files for the document routes, built here from code (a few KB to
~1 MB each; nothing large in git): the five files of the hardening issue, and a corpus of
corrupt and truncated files of every kind the routes read."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

from tests.images import encode, render_text
from tests.pdfs import image_pdf, multipage_tiff, pdf_file, text_pdf

MIB = 2**20


def zeros_deflate(megabytes: int, fill: bytes = b"\0") -> bytes:
    """A raw deflate stream that inflates to `megabytes` MiB of `fill`, in ~1 KB per MiB:
    after a full flush the compressor forgets its history, so every 1 MiB block of the same
    bytes compresses to the same output, and the block is written once and repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(fill * MIB) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(fill * MIB) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == block  # the repetition trick holds
    return block * megabytes + compressor.flush()


def write_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP from (name, raw deflate data, crc32, declared unpacked size): the sizes and CRCs
    are whatever the caller claims, as a hostile archive's are."""
    out = io.BytesIO()
    central = []
    for name, data, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size,
                        len(encoded), 0)
        )  # fmt: skip
        out.write(encoded + data)
        central.append(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size,
                        len(encoded), 0, 0, 0, 0, 0, offset) + encoded
        )  # fmt: skip
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory),
                    start, 0)
    )  # fmt: skip
    return out.getvalue()


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _rezip(base: bytes, replace: dict[str, bytes]) -> bytes:
    """`base` (a ZIP) with some members' contents replaced (honest sizes)."""
    import zipfile

    members = []
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        for info in archive.infolist():
            content = replace.get(info.filename, archive.read(info))
            members.append((info.filename, _deflated(content), zlib.crc32(content), len(content)))
    return write_zip(members)


def plain_docx(text: str = "Hello table") -> bytes:
    """A DOCX with one paragraph and a one-cell table saying `text`."""
    import docx

    document = docx.Document()
    document.add_paragraph("Before the table")
    document.add_table(rows=1, cols=1).cell(0, 0).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def grid_span_docx(span: int = 2_000_000) -> bytes:
    """A DOCX whose one table cell claims to span `span` grid columns (python-docx repeats
    the cell once per spanned column)."""
    import zipfile

    base = plain_docx("spanned cell")
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        xml = archive.read("word/document.xml").decode()
    start = xml.index("<w:tc>") + len("<w:tc>")
    close = xml.index("</w:tcPr>", start)
    xml = xml[:close] + f'<w:gridSpan w:val="{span}"/>' + xml[close:]
    return _rezip(base, {"word/document.xml": xml.encode()})


def lying_zip_docx(megabytes: int = 1100, declared: int = 4000) -> bytes:
    """A DOCX whose directory says word/document.xml is `declared` bytes (with the CRC of
    that many zero bytes, so a read cut at the declared size passes), while its data inflates
    to `megabytes` MiB."""
    import zipfile

    base = plain_docx()
    members = []
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        for info in archive.infolist():
            if info.filename == "word/document.xml":
                crc = zlib.crc32(b"\0" * declared)
                members.append((info.filename, zeros_deflate(megabytes), crc, declared))
                continue
            content = archive.read(info)
            members.append((info.filename, _deflated(content), zlib.crc32(content), len(content)))
    return write_zip(members)


def dimension_xlsx(rows: int = 300_000) -> bytes:
    """An XLSX whose sheet declares `A1:XFD<rows>` (16,384 columns) and holds one cell, in its
    last row (openpyxl's read-only mode pads every row to the declared width)."""
    import zipfile

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "placeholder"
    out = io.BytesIO()
    workbook.save(out)
    name = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        xml = archive.read(name).decode()
    head = xml[: xml.index("<dimension")]
    tail = xml[xml.index("</sheetData>") + len("</sheetData>") :]
    body = (
        f'<dimension ref="A1:XFD{rows}"/><sheetViews><sheetView workbookViewId="0"/></sheetViews>'
        f'<sheetData><row r="{rows}"><c r="A{rows}" t="inlineStr"><is><t>last</t></is></c></row>'
        "</sheetData>"
    )
    return _rezip(out.getvalue(), {name: (head + body + tail).encode()})


def pdf_with_streams(streams: list[bytes], filters: str = "/Filter /FlateDecode") -> bytes:
    """A one-page-per-stream PDF whose content streams are the given (already encoded) data."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for stream in streams:
        page, content = len(objects) + 1, len(objects) + 2
        kids.append(f"{page} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R >>"
            .encode()
        )  # fmt: skip
        objects.append(
            b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(stream), filters.encode(), stream)
        )
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    return pdf_file(objects, version="1.7")


def inflating_pdf(megabytes: int = 1024) -> bytes:
    """A PDF whose one page's content stream inflates to `megabytes` MiB (of spaces)."""
    # FlateDecode wants the zlib wrapper: a header, the raw stream, then an Adler-32 (a
    # wrong one: the readers do not get that far before their memory is spent)
    return pdf_with_streams([b"\x78\x9c" + zeros_deflate(megabytes, b" ") + b"\0\0\0\1"])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))


def huge_header_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims side x side pixels (Pillow refuses to open it: a bomb)."""
    header = struct.pack(">2L5B", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


# The five files: (name, builder, media type Open WebUI would declare).
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HOSTILE: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "docx-gridspan": (grid_span_docx, DOCX_TYPE),
    "docx-lying-zip": (lying_zip_docx, DOCX_TYPE),
    "xlsx-dimension": (dimension_xlsx, XLSX_TYPE),
    "pdf-inflating-stream": (inflating_pdf, "application/pdf"),
    "png-huge-header": (huge_header_png, None),
}


def corrupt_corpus() -> dict[str, bytes]:
    """Damaged files of every kind the document routes read: truncated, bit-flipped, with
    broken parts. None of them may make a route answer 500."""
    import zipfile

    png = encode(render_text(["corrupt corpus"], size=(200, 60)))
    jpeg = encode(render_text(["jpeg"], size=(200, 60)), "JPEG")
    tiff = multipage_tiff([render_text(["page"], size=(100, 60))] * 3)
    pdf = text_pdf([["Some text here"], ["Second page"]])
    scanned = image_pdf([render_text(["scan"], size=(200, 80))])
    docx = plain_docx()

    def flipped(data: bytes, every: int = 97) -> bytes:
        damaged = bytearray(data)
        for index in range(len(damaged) // 3, len(damaged), every):
            damaged[index] ^= 0x5A
        return bytes(damaged)

    def without(data: bytes, member: str) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                if info.filename != member:
                    target.writestr(info, source.read(info))
        return out.getvalue()

    corpus = {
        "png-truncated": png[: len(png) // 2],
        "png-flipped": flipped(png),
        "png-header-only": png[:33],
        "jpeg-truncated": jpeg[: len(jpeg) // 2],
        "jpeg-flipped": flipped(jpeg, 31),
        "gif-header-only": b"GIF89a\x10\x00\x10\x00\x80\x00\x00",
        "bmp-bad-size": b"BM"
        + struct.pack("<L", 10**9)
        + b"\0" * 4
        + struct.pack("<L", 54)
        + struct.pack("<3L2H", 40, 2**30, 2**30, 1, 24)
        + b"\0" * 24,
        "tiff-truncated": tiff[: len(tiff) // 2],
        "tiff-flipped": flipped(tiff, 13),
        "tiff-bad-ifd": b"II*\x00" + struct.pack("<L", 2**31),
        "pdf-truncated": pdf[: len(pdf) // 2],
        "pdf-flipped": flipped(pdf, 7),
        "pdf-header-only": b"%PDF-1.7\n",
        "pdf-scan-truncated": scanned[: len(scanned) * 2 // 3],
        "pdf-bad-stream": pdf_with_streams([b"\x78\x9cnot deflate at all"]),
        "pdf-endless-array": pdf_with_streams([b"[" * 200_000], filters=""),
        "docx-truncated": docx[: len(docx) // 2],
        "docx-flipped": flipped(docx, 211),
        "docx-no-document": without(docx, "word/document.xml"),
        "docx-no-content-types": without(docx, "[Content_Types].xml"),
        "docx-bad-xml": _rezip(docx, {"word/document.xml": b"<w:document><w:body><w:p>"}),
        "docx-deep-nesting": _rezip(
            docx, {"word/document.xml": b"<a>" * 100_000 + b"</a>" * 100_000}
        ),
        "xlsx-truncated": dimension_xlsx(5)[:1500],
        "zip-empty": write_zip([]),
        "random": bytes((i * 7919 + 13) % 256 for i in range(4096)),
        "html-unclosed": b"<html><body>" + b"<div>" * 50_000,
    }
    return corpus
