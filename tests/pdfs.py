"""PDFs for tests, written here: born-digital pages (Helvetica text objects) and scans."""

from __future__ import annotations

import io

from PIL import Image


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(
    pages: list[list[str]],
    size: tuple[float, float] = (612, 792),
    font_size: float = 24,
    rotate: int = 0,
    encrypted: bool = False,
) -> bytes:
    """A valid PDF whose pages carry the given lines as real text (a text layer, no images).

    Each line starts 72 points from the left, the first 72 points below the top, the next
    1.5 font sizes lower. `encrypted` adds a Standard security handler whose password nobody
    knows (readers then ask for one).
    """
    width, height = size
    objects: list[bytes] = []  # object n is objects[n - 1]
    font_ref = 3
    page_refs = []
    objects.append(b"")  # 1: catalog, filled below
    objects.append(b"")  # 2: page tree, filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        ops = ["BT", f"/F1 {font_size} Tf", f"{1.5 * font_size} TL", f"72 {height - 72} Td"]
        for number, line in enumerate(lines):
            ops.append(f"({_escape(line)}) Tj" if number == 0 else f"({_escape(line)}) '")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_ref = len(objects)
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Rotate {rotate} "
                f"/Resources << /Font << /F1 {font_ref} 0 R >> >> /Contents {content_ref} 0 R >>"
            ).encode()
        )
        page_refs.append(len(objects))
    trailer_extra = ""
    if encrypted:
        objects.append(
            b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>" % (b"11" * 32, b"22" * 32)
        )
        trailer_extra = f" /Encrypt {len(objects)} 0 R /ID [<{'33' * 16}> <{'33' * 16}>]"
    kids = " ".join(f"{ref} 0 R" for ref in page_refs)
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_refs)} >>".encode()
    return pdf_file(objects, trailer_extra)


def pdf_file(objects: list[bytes], trailer_extra: str = "", version: str = "1.4") -> bytes:
    """A PDF of these objects (object n is objects[n - 1], the catalog first), with its xref
    table and trailer; `trailer_extra` adds trailer entries (/Encrypt, /ID)."""
    out = io.BytesIO()
    out.write(b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % version.encode())
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{trailer_extra} >>\n"
    out.write(trailer.encode())
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def image_pdf(pages: list[Image.Image], dpi: float = 72) -> bytes:
    """An image-only PDF (a scan: no text layer), one page per image, `dpi` pixels per inch."""
    buffer = io.BytesIO()
    first, *rest = [page.convert("RGB") for page in pages]
    first.save(buffer, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return buffer.getvalue()


def multipage_tiff(pages: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    first, *rest = pages
    first.save(buffer, format="TIFF", save_all=True, append_images=rest, compression="tiff_lzw")
    return buffer.getvalue()
