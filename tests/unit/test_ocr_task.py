"""The OCR task that runs inside Triton: real RapidOCR on rendered text, reading order, TrOCR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from frontend.tasks.common import ModelNotDownloaded
from frontend.tasks.ocr import (
    OcrEngine,
    OcrLine,
    OcrResult,
    RapidOcrEngine,
    TrOcrEngine,
    load_ocr_engine,
    reading_order,
)
from frontend.tasks.ocr_rapid_steps import line_crops
from frontend.tasks.ocr_trocr import TROCR_MAX_NEW_TOKENS
from tools.build_test_models import TINY_TROCR, build_test_models

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def render(
    words: list[tuple[int, int, str]], size: tuple[int, int] = (600, 120), font_size: int = 48
) -> np.ndarray:
    """Black text on white, RGB uint8 [H, W, 3]: (x, y, text) per word."""
    if FONT.is_file():
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(FONT, font_size)
    else:  # Pillow >= 10.1 ships a scalable default font
        font = ImageFont.load_default(size=font_size)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for x, y, text in words:
        draw.text((x, y), text, fill="black", font=font)
    return np.asarray(image)


HELLO = render([(20, 30, "Hello Triton 2026")])
RECEIPT = render([(20, 20, "TOTAL 12.50"), (20, 110, "CASH 20.00")], (500, 200), 40)
# Far apart on one row, the right word a little higher (the engine itself lists it first).
ONE_ROW = render([(20, 50, "LEFT"), (700, 34, "RIGHT")], (900, 140), 40)
BLANK = np.full((200, 300, 3), 255, np.uint8)


@pytest.fixture(scope="module")
def rapid() -> OcrEngine:
    return load_ocr_engine("rapidocr/PP-OCRv4", threads=1)


def test_builtin_id_gives_rapidocr(rapid: OcrEngine) -> None:
    assert isinstance(rapid, RapidOcrEngine)


@pytest.mark.parametrize("variant", ["rgb", "grey", "rgba"])
def test_reads_rendered_text_exactly(rapid: OcrEngine, variant: str) -> None:
    image = {
        "rgb": HELLO,
        "grey": HELLO[:, :, 0],
        "rgba": np.dstack([HELLO, np.full(HELLO.shape[:2], 255, np.uint8)]),
    }[variant]
    [result] = rapid.read([image])
    assert result.text == "Hello Triton 2026"
    [line] = result.lines
    assert line.text == result.text
    assert 0.8 < line.confidence <= 1.0
    assert len(line.box) == 4
    xs, ys = [p[0] for p in line.box], [p[1] for p in line.box]
    assert 0 <= min(xs) < 40 and 300 < max(xs) <= 600  # text spans x 20..~430
    assert 0 <= min(ys) < max(ys) <= 120
    (top_left, top_right, bottom_right, _) = line.box
    assert top_left[0] < top_right[0] and top_right[1] < bottom_right[1]  # clockwise
    assert json.loads(json.dumps(result.to_dict())) == {
        "text": "Hello Triton 2026",
        "lines": [{"text": line.text, "confidence": line.confidence, "box": line.box, "block": 0}],
    }


@pytest.mark.parametrize(
    ("image", "lines", "text"),
    [
        (RECEIPT, ["TOTAL 12.50", "CASH 20.00"], "TOTAL 12.50\nCASH 20.00"),
        (ONE_ROW, ["LEFT", "RIGHT"], "LEFT RIGHT"),
        (BLANK, [], ""),
    ],
    ids=["two-rows", "one-row", "blank"],
)
def test_reading_order(rapid: OcrEngine, image: np.ndarray, lines: list[str], text: str) -> None:
    [result] = rapid.read([image])
    assert [line.text for line in result.lines] == lines
    assert result.text == text


def test_several_images_in_one_call_keep_their_order(rapid: OcrEngine) -> None:
    results = rapid.read([RECEIPT, BLANK, HELLO])
    assert [r.text for r in results] == ["TOTAL 12.50\nCASH 20.00", "", "Hello Triton 2026"]
    assert rapid.read([]) == []


def box(left: float, top: float, right: float, bottom: float) -> list[list[float]]:
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


@pytest.mark.parametrize(
    ("boxes", "rows"),
    [
        # a short word beside a tall one, slightly lower: same row
        (
            {"b": box(300, 10, 400, 60), "a": box(10, 0, 200, 50), "c": box(10, 70, 90, 110)},
            [["a", "b"], ["c"]],
        ),
        # a 2x2 grid given column by column
        (
            {
                "1": box(0, 0, 50, 20),
                "3": box(0, 30, 50, 50),
                "2": box(100, 2, 150, 22),
                "4": box(100, 28, 150, 48),
            },
            [["1", "2"], ["3", "4"]],
        ),
        # lines touching by a few pixels stay apart
        ({"x": box(0, 0, 100, 40), "y": box(0, 36, 100, 76)}, [["x"], ["y"]]),
        ({}, []),
    ],
    ids=["mixed-heights", "grid", "touching", "none"],
)
def test_rows_from_boxes(boxes: dict[str, list[list[float]]], rows: list[list[str]]) -> None:
    lines = [OcrLine(name, 1.0, points) for name, points in boxes.items()]
    assert [[line.text for line in row] for row in reading_order(lines)] == rows


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    build_test_models(data, only="ocr")
    return data / "models"


@pytest.fixture(scope="module")
def trocr(models_home: Path) -> OcrEngine:
    with pytest.MonkeyPatch.context() as patch:  # local_snapshot reads HF_HOME at call time
        patch.setenv("HF_HOME", str(models_home))
        return load_ocr_engine(TINY_TROCR)


def test_trocr_reads_each_image_as_one_line(trocr: OcrEngine) -> None:
    assert isinstance(trocr, TrOcrEngine)
    blue = np.zeros((100, 30, 3), np.uint8)
    blue[..., 2] = 255
    images = [HELLO, blue, RECEIPT, np.zeros((3, 50, 3), np.uint8), BLANK[:, :, 0]]
    together = trocr.read(images)
    assert len(together) == len(images)
    for image, result in zip(images, together, strict=True):
        [line] = result.lines
        assert isinstance(line.text, str) and line.text and result.text == line.text
        assert 0.0 <= line.confidence <= 1.0
        height, width = image.shape[:2]
        assert line.box == [[0, 0], [width, 0], [width, height], [0, height]]
    assert len({r.text for r in together}) > 1  # the tiny model tells these images apart
    # 64 new tokens make at least 64 characters: the blue line ended early, the others did not.
    assert [len(r.text) < TROCR_MAX_NEW_TOKENS for r in together] == [0, 1, 0, 0, 0]
    # Lines of different lengths in one batch: confidences ignore the padding after the end.
    alone = [trocr.read([image])[0] for image in images]
    assert [r.text for r in alone] == [r.text for r in together]
    assert [r.lines[0].confidence for r in alone] == pytest.approx(
        [r.lines[0].confidence for r in together], abs=1e-5
    )
    assert trocr.read([]) == []


def test_trocr_missing_model(models_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(models_home))
    with pytest.raises(ModelNotDownloaded):
        load_ocr_engine("microsoft/trocr-base-printed")


def testline_crops_straighten_boxes_and_turn_tall_ones_upright() -> None:
    # A gradient image: each crop must hold exactly the pixels its box covers.
    ys, xs = np.mgrid[0:100, 0:200]
    image = np.stack([xs, ys, np.zeros_like(xs)], axis=2).astype(np.uint8)
    wide = np.array([[20, 10], [120, 10], [120, 30], [20, 30]], np.float32)
    tall = np.array([[150, 5], [160, 5], [160, 95], [150, 95]], np.float32)
    flat, upright = line_crops(image, [wide, tall])
    assert flat.shape == (20, 100, 3)
    assert np.array_equal(flat[:, :, 0], np.broadcast_to(np.arange(20, 120), (20, 100)))
    assert np.array_equal(flat[:, 0, 1], np.arange(10, 30))
    assert upright.shape == (10, 90, 3)  # 90 high, 10 wide: turned a quarter
    # np.rot90, a quarter turn left: the box's top row (y = 5) is the first column, right to left.
    assert np.array_equal(upright[:, 0, 1], np.full(10, 5))
    assert np.array_equal(upright[:, 0, 0], np.arange(159, 149, -1))


def test_rapidocr_cuts_crops_withline_crops(rapid: OcrEngine) -> None:
    assert isinstance(rapid, RapidOcrEngine)
    assert rapid.engine.get_crop_img_list is line_crops


def test_result_is_plain_data() -> None:
    result = OcrResult("a b", [OcrLine("a b", 0.5, box(0, 0, 1, 1))])
    assert result.to_dict() == {
        "text": "a b",
        "lines": [{"text": "a b", "confidence": 0.5, "box": box(0, 0, 1, 1), "block": 0}],
    }


def test_trocr_honours_configured_max_new_tokens(
    trocr: OcrEngine, models_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(models_home))
    short = load_ocr_engine(TINY_TROCR, max_new_tokens=3)
    assert isinstance(short, TrOcrEngine) and short.max_new_tokens == 3
    full, clipped = trocr.read([HELLO])[0].text, short.read([HELLO])[0].text
    assert clipped and len(clipped) < len(full)
    assert full.startswith(clipped.strip()[:1])
