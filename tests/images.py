"""Images for tests: text rendered with a real font, and encodings of them."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans from opencv-python's wheel (always installed), else Pillow's own font."""
    import cv2

    bundled = Path(cv2.__file__).parent / "qt" / "fonts" / "DejaVuSans.ttf"
    if bundled.exists():
        return ImageFont.truetype(str(bundled), size)
    return ImageFont.load_default(size=size)


def render_text(
    lines: list[str], size: tuple[int, int] = (640, 140), font_size: int = 44
) -> Image.Image:
    """Black text lines on white, one below the other."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    y = 20
    for line in lines:
        draw.text((24, y), line, fill="black", font=font(font_size))
        y += int(font_size * 1.6)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def b64(data: bytes, data_url: str | None = None) -> str:
    text = base64.b64encode(data).decode("ascii")
    return f"data:{data_url};base64,{text}" if data_url else text


def png_header(width: int, height: int) -> bytes:
    """A well-formed PNG that declares width x height but carries almost no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
