"""Decode untrusted image bytes exactly once, safely, into RGB uint8 arrays for the models (in
the document sandbox, whose memory limit a MemoryError here is left to name)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from frontend.core.errors import APIError, InvalidRequest

# Formats decoded by Pillow's own C code and common for photos and scans.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_side: int


def size_problem(width: int, height: int, limits: ImageLimits) -> str | None:
    """What is wrong with an image of this size, if anything (checked before decoding)."""
    if width < 1 or height < 1:
        return f"has no pixels ({width}x{height})"
    if width > limits.max_side or height > limits.max_side:
        return f"is {width}x{height}; the largest side allowed is {limits.max_side}"
    if width * height > limits.max_pixels:
        return f"has {width * height} pixels; the limit is {limits.max_pixels}"
    return None


def _bad(index: int, message: str) -> APIError:
    return InvalidRequest(f"image {index}: {message}", {"image_index": index})


def decode_image(
    data: bytes, index: int, limits: ImageLimits, fit_within: int | None = None
) -> np.ndarray:
    """RGB uint8 [H, W, 3], EXIF orientation applied; APIError 400 for anything unusable.

    `fit_within` shrinks (never enlarges) the image to fit that many pixels per side.

    Sizes are checked from the header before any pixel is decoded, so a decompression bomb
    costs a few bytes of parsing, not gigabytes of memory.
    """
    return np.asarray(decode_pil(data, index, limits, fit_within), dtype=np.uint8)


def decode_pil(
    data: bytes, index: int, limits: ImageLimits, fit_within: int | None = None
) -> Image.Image:
    """decode_image's RGB picture as a PIL image (no array copy, for code that resizes it)."""
    if not data:
        raise _bad(index, "is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
            problem = size_problem(*image.size, limits)
            if problem:
                raise _bad(index, problem)
            image.load()  # raises on truncated or corrupt data
            # In place, and RGB kept as it is: exif_transpose and convert each return a copy
            # otherwise, even with nothing to do (~40% of a PNG's decode time in copies).
            ImageOps.exif_transpose(image, in_place=True)
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            if fit_within is not None and max(rgb.size) > fit_within:
                rgb.thumbnail((fit_within, fit_within), Image.Resampling.BICUBIC)
    except APIError:
        raise
    except UnidentifiedImageError:
        raise _bad(
            index, f"is not a supported image (supported: {', '.join(SUPPORTED_FORMATS)})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bad(index, "is too large to decode (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Pillow reports truncated and corrupt files this way; the text stays out of the reply.
        raise _bad(index, "is truncated or corrupt") from None
    return rgb
