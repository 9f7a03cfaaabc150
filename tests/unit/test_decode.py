"""decode_image: formats, colour modes, EXIF orientation, limits checked before decoding."""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
from PIL import Image

from frontend.core.errors import APIError
from frontend.images.decode import ImageLimits, decode_image
from tests.images import png_header

LIMITS = ImageLimits(max_pixels=10_000_000, max_side=8000)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_supported_formats_decode_to_rgb(fmt: str) -> None:
    array = decode_image(encode(Image.new("RGB", (30, 20), (200, 10, 10)), fmt), 0, LIMITS)
    assert array.shape == (20, 30, 3)
    assert array.dtype == np.uint8
    assert abs(int(array[10, 15, 0]) - 200) < 30


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1", "CMYK"])
def test_colour_modes_become_rgb(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "I;16" else "PNG"
    assert decode_image(encode(Image.new(mode, (8, 6)), fmt), 0, LIMITS).shape == (6, 8, 3)


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (40, 10), "white")  # wide as stored, tall once rotated
    exif = Image.Exif()
    exif[0x0112] = 6
    array = decode_image(encode(stored, "JPEG", exif=exif.tobytes()), 0, LIMITS)
    assert array.shape == (40, 10, 3)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"plain text", "not a supported image"),
        (encode(Image.new("RGB", (8, 8)), "ICO"), "not a supported image"),
        (encode(Image.new("RGB", (64, 64)))[:60], "truncated or corrupt"),
        (png_header(9000, 10), "largest side"),
        (png_header(5000, 5000), "pixels"),
    ],
    ids=["empty", "text", "ico", "truncated", "too wide", "too many pixels"],
)
def test_unusable_input_is_refused_with_its_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(APIError) as caught:
        decode_image(data, 3, LIMITS)
    assert caught.value.status == 400
    assert fragment in caught.value.message
    assert caught.value.details == {"image_index": 3}


def test_bomb_is_refused_before_any_pixel_is_decoded() -> None:
    # 60000 x 60000 declared: 10.8 GB of RGB if it were decoded.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(APIError):
        decode_image(png_header(60000, 60000), 0, ImageLimits(10**12, 10**6))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200_000


def test_fit_within_shrinks_but_never_enlarges() -> None:
    big = encode(Image.new("RGB", (3000, 1500), "white"))
    assert decode_image(big, 0, LIMITS, fit_within=1024).shape == (512, 1024, 3)
    small = encode(Image.new("RGB", (300, 200), "white"))
    assert decode_image(small, 0, LIMITS, fit_within=1024).shape == (200, 300, 3)
