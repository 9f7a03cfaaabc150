"""What every OCR engine returns: lines with boxes and confidences, in reading order."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from frontend.tasks.ocr_layout import layout


@dataclass
class OcrLine:
    text: str
    confidence: float  # 0..1
    box: list[list[float]]  # 4 [x, y] points, clockwise from top-left, in input-image pixels
    block: int = 0  # the text block (paragraph, column, table) it belongs to, in reading order


@dataclass
class OcrResult:
    text: str  # lines of one row joined by " ", rows by "\n"
    lines: list[OcrLine]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OcrEngine(Protocol):
    def read(self, images: list[np.ndarray]) -> list[OcrResult]: ...


def reading_order(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Rows in reading order (blocks and columns first, each top to bottom, left to right)."""
    return [row for block in _blocks(lines) for row in block]


def _blocks(lines: list[OcrLine]) -> list[list[list[OcrLine]]]:
    return [
        [[lines[index] for index in row] for row in block]
        for block in layout([line.box for line in lines])
    ]


def ordered_result(lines: list[OcrLine]) -> OcrResult:
    """Lines in reading order, each with its block index; one text row per output line."""
    ordered: list[OcrLine] = []
    rows: list[str] = []
    for number, block in enumerate(_blocks(lines)):
        for row in block:
            for line in row:
                line.block = number
                ordered.append(line)
            rows.append(" ".join(line.text for line in row))
    return OcrResult("\n".join(rows), ordered)


def rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] from grey, grey+alpha or RGBA input."""
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels in (1, 2):
        image = np.repeat(image[:, :, :1], 3, axis=2)
    elif channels == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image, dtype=np.uint8)


def whole_image_box(image: np.ndarray) -> list[list[float]]:
    height, width = float(image.shape[0]), float(image.shape[1])
    return [[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]]
