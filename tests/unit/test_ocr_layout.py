"""Reading order from boxes alone (synthetic boxes) and on rendered pages with real RapidOCR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frontend.tasks.ocr import OcrEngine, RapidOcrEngine, load_ocr_engine
from frontend.tasks.ocr_layout import layout, page_skew
from frontend.tasks.ocr_rapid import FULLWIDTH_ALNUM
from tests import ocr_pages


def rect(left: float, top: float, right: float, bottom: float) -> list[list[float]]:
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def turned(box: list[list[float]], degrees: float) -> list[list[float]]:
    """The box rotated about the origin (y down: positive degrees turn clockwise)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return [[x * cos - y * sin, x * sin + y * cos] for x, y in box]


# Two columns of 6 prose lines, rows aligned across the gutter; numbered in reading order.
TWO_COLUMNS = [rect(40, 40 + 40 * i, 560, 70 + 40 * i) for i in range(6)] + [
    rect(620, 40 + 40 * i, 1140, 70 + 40 * i) for i in range(6)
]


def order(boxes: list[list[list[float]]]) -> list[list[list[int]]]:
    return layout(boxes)


def test_two_columns_read_column_by_column() -> None:
    shuffled = np.random.default_rng(0).permutation(len(TWO_COLUMNS)).tolist()
    blocks = order([TWO_COLUMNS[i] for i in shuffled])
    assert [[shuffled[i] for row in block for i in row] for block in blocks] == [
        list(range(6)),
        list(range(6, 12)),
    ]


def test_heading_across_columns_comes_first() -> None:
    boxes = [rect(40, 0, 1140, 30)] + [
        rect(x, y + 60, r, b + 60) for (x, y), _, (r, b), _ in TWO_COLUMNS
    ]
    blocks = order(boxes)
    assert [[i for row in block for i in row] for block in blocks] == [
        [0],
        list(range(1, 7)),
        list(range(7, 13)),
    ]


@pytest.mark.parametrize("degrees", [-5.0, 5.0])
def test_skewed_lines_stay_apart(degrees: float) -> None:
    # Long lines 40 px apart: turned by 5 degrees their ends climb 87 px, past the next line.
    boxes = [turned(rect(40, 100 + 40 * i, 1040, 130 + 40 * i), degrees) for i in range(8)]
    assert page_skew(np.asarray(boxes)) == pytest.approx(math.radians(degrees), abs=1e-6)
    assert order(boxes) == [[[i] for i in range(8)]]


def test_table_reads_row_by_row() -> None:
    boxes = []
    for i in range(5):
        y = 40 + 50 * i
        boxes += [rect(40, y, 160, y + 30), rect(500, y, 530, y + 30), rect(800, y, 880, y + 30)]
    assert order(boxes) == [[[3 * i, 3 * i + 1, 3 * i + 2] for i in range(5)]]


def test_sidebar_beside_prose_is_its_own_column() -> None:
    # Short sidebar entries 44 px apart beside prose lines 40 px apart: off each other's rows.
    sidebar = [rect(24, 80 + 44 * i, 110, 100 + 44 * i) for i in range(6)]
    prose = [rect(300, 140 + 40 * i, 720, 160 + 40 * i) for i in range(7)]
    blocks = order(sidebar + prose)
    assert [i for block in blocks for row in block for i in row] == list(range(13))


def test_table_with_long_descriptions_reads_row_by_row() -> None:
    # Prose-length item descriptions and short prices on the same rows: a table, not columns.
    boxes = []
    for i in range(5):
        y = 40 + 50 * i
        boxes += [rect(40, y, 500, y + 30), rect(800, y, 880, y + 30)]
    assert order(boxes) == [[[2 * i, 2 * i + 1] for i in range(5)]]


def test_skewed_table_reads_row_by_row() -> None:
    boxes = []
    for i in range(5):
        y = 40 + 50 * i
        row = [rect(40, y, 260, y + 30), rect(500, y, 560, y + 30), rect(800, y, 950, y + 30)]
        boxes += [turned(box, -4) for box in row]
    assert order(boxes) == [[[3 * i, 3 * i + 1, 3 * i + 2] for i in range(5)]]


def test_no_boxes() -> None:
    assert order([]) == []
    assert page_skew(np.zeros((0, 4, 2))) == 0.0


@pytest.fixture(scope="module")
def rapid() -> OcrEngine:
    return load_ocr_engine("rapidocr/PP-OCRv4", threads=1)


# The dense page is read by test_dense_page_has_no_flipped_lines (the slowest page).
ISSUE_SET = [page for page in ocr_pages.issue_set() if not page[0].startswith("dense")]


@pytest.mark.parametrize("page", ISSUE_SET, ids=[name for name, _ in ISSUE_SET])
def test_issue_set_pages_read_in_order(rapid: OcrEngine, page: tuple[str, tuple]) -> None:
    # Issue 16's set (columns, skew +-3/+-7, dense, table, receipt, screenshot): its target
    # is CER <= 0.05 per page; all read at <= 0.001 today, so 0.02 catches regressions.
    _name, (image, truth) = page
    [result] = rapid.read([image])
    assert ocr_pages.cer(result.text, truth) <= 0.02


@pytest.mark.parametrize("degrees", [-5.0, 5.0])
def test_rotated_pages_read_in_order(rapid: OcrEngine, degrees: float) -> None:
    image, truth = ocr_pages.rotated(degrees)
    [result] = rapid.read([image])
    assert ocr_pages.cer(result.text, truth) <= 0.02


def test_blurred_page_reads(rapid: OcrEngine) -> None:
    image, truth = ocr_pages.blurred()
    [result] = rapid.read([image])
    assert ocr_pages.cer(result.text, truth) <= 0.05


def test_small_print_on_a_big_page_is_detected_again_larger(rapid: OcrEngine) -> None:
    # 12 px print on a 1600 px page is 7 px at the 960 px detection size, where neighbouring
    # lines merge (CER ~0.3): the detector measures its kernels and runs again larger.
    image, truth = ocr_pages.small_print()
    [result] = rapid.read([image])
    assert isinstance(rapid, RapidOcrEngine)
    assert rapid.detector.sides[0] == 960 and rapid.detector.sides[1] > 960
    assert ocr_pages.cer(result.text, truth) <= 0.02


def test_full_width_digits_and_letters_become_ascii() -> None:
    assert "castle \uff12 \uff21\uff42\uff0c".translate(FULLWIDTH_ALNUM) == "castle 2 Ab\uff0c"


def test_two_column_page_has_one_block_per_column(rapid: OcrEngine) -> None:
    image, _ = ocr_pages.two_columns()
    [result] = rapid.read([image])
    left = [line.block for line in result.lines if line.box[0][0] < 600]
    right = [line.block for line in result.lines if line.box[0][0] >= 600]
    assert set(left) == {0} and set(right) == {1}
    assert [line.block for line in result.lines] == sorted(line.block for line in result.lines)


def test_dense_page_has_no_flipped_lines(rapid: OcrEngine) -> None:
    # The angle classifier turns correct lines of this page upside down, even when a flip needs
    # 0.99 confidence (CER 0.15): it is off unless configured.
    image, truth = ocr_pages.dense()
    [result] = rapid.read([image])
    assert len(result.lines) == 40
    assert ocr_pages.cer(result.text, truth) <= 0.01
    assert isinstance(rapid, RapidOcrEngine) and not rapid.engine.use_cls
    # 34 px print is large enough at the 960 px detection size: no second detection.
    assert rapid.detector.sides == [960]


def test_cer() -> None:
    assert ocr_pages.cer("abc", "abc") == 0.0
    assert ocr_pages.cer("abd", "abc") == pytest.approx(1 / 3)
    assert ocr_pages.cer("a  b\nc", "a b c") == 0.0
