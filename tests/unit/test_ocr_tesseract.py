"""The Tesseract OCR engine (real libtesseract on Debian's traineddata) and its TSV grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frontend.tasks.ocr import load_ocr_engine
from frontend.tasks.ocr_languages import debian_package, parse_lang, tessdata_dir
from frontend.tasks.ocr_tesseract import TesseractEngine, lines_from_tsv
from tests.images import render_text

# `tesseract page.png - tsv`: a header, a block, a paragraph and two lines; the second line
# has no level-4 row (its box is then its words' union) and an empty word (skipped).
HEADER = "level page_num block_num par_num line_num word_num left top width height conf text"
CLI_TSV = "\n".join(
    "\t".join(str(col) for col in row)
    for row in [
        HEADER.split(" "),
        [1, 1, 0, 0, 0, 0, 0, 0, 700, 120, -1, ""],
        [2, 1, 1, 0, 0, 0, 20, 26, 367, 81, -1, ""],
        [3, 1, 1, 1, 0, 0, 20, 26, 367, 81, -1, ""],
        [4, 1, 1, 1, 1, 0, 22, 26, 365, 28, -1, ""],
        [5, 1, 1, 1, 1, 1, 22, 26, 94, 24, 90, "Grüße"],
        [5, 1, 1, 1, 1, 2, 130, 32, 53, 18, 80, "aus"],
        [5, 1, 1, 1, 2, 1, 20, 71, 79, 36, 96, "Äpfel"],
        [5, 1, 1, 1, 2, 2, 115, 76, 55, 30, 94, "Öl"],
        [5, 1, 1, 1, 2, 3, 180, 76, 5, 5, 0, " "],
        [4, 1, 2, 1, 1, 0, 300, 300, 50, 20, -1, ""],  # a line with no words: dropped
    ]
)


def test_tsv_words_become_lines_with_boxes_and_mean_confidence() -> None:
    first, second = lines_from_tsv(CLI_TSV)

    assert first.text == "Grüße aus"
    assert first.confidence == pytest.approx(0.85)
    assert first.box == [[22, 26], [387, 26], [387, 54], [22, 54]]  # the level-4 row
    assert second.text == "Äpfel Öl"
    assert second.confidence == pytest.approx(0.95)
    assert second.box == [[20, 71], [170, 71], [170, 107], [20, 107]]  # union of its words


def test_tsv_without_words_gives_no_lines() -> None:
    assert lines_from_tsv("") == []
    assert lines_from_tsv(CLI_TSV.split("\n5\t")[0]) == []


@pytest.mark.parametrize(
    ("lang", "codes"),
    [
        ("deu", ["deu"]),
        ("deu+eng", ["deu", "eng"]),
        ("DE, en", ["deu", "eng"]),
        ("zh", ["chi_sim"]),
    ],
)
def test_lang_accepts_tesseract_codes_and_iso_639_1(lang: str, codes: list[str]) -> None:
    assert parse_lang(lang) == codes


@pytest.mark.parametrize("lang", ["", "+", "klingon", "xx", "eng+qq", "../eng"])
def test_lang_rejects_unknown_codes(lang: str) -> None:
    with pytest.raises(ValueError, match=r"unknown language|empty"):
        parse_lang(lang)


def test_debian_package_names() -> None:
    assert debian_package("deu") == "tesseract-ocr-deu"
    assert debian_package("chi_sim") == "tesseract-ocr-chi-sim"


@pytest.fixture(scope="module")
def engine() -> TesseractEngine:
    tesseract = load_ocr_engine("tesseract/5")
    assert isinstance(tesseract, TesseractEngine)
    return tesseract


def test_reads_lines_in_order_with_boxes(engine: TesseractEngine) -> None:
    image = np.asarray(render_text(["Invoice 4711", "Total 42.50"], (640, 200)))

    result = engine.read([image])[0]

    assert result.text == "Invoice 4711\nTotal 42.50"
    first, second = result.lines
    assert 0.5 < first.confidence <= 1 and first.block <= second.block
    (left, top), _, (right, bottom), _ = first.box
    assert 0 <= left < right <= 640 and 0 <= top < bottom <= second.box[0][1]


def test_german_needs_its_language(engine: TesseractEngine) -> None:
    image = np.asarray(render_text(["Grüße aus Köln", "Äpfel und Öl"], (640, 200)))

    assert engine.read([image], "deu")[0].text == "Grüße aus Köln\nÄpfel und Öl"
    assert engine.read([image], "de")[0].text == "Grüße aus Köln\nÄpfel und Öl"


def test_a_language_that_is_not_installed_names_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tessdata_dir()
    assert real is not None
    (tmp_path / "eng.traineddata").symlink_to(real / "eng.traineddata")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    only_english = TesseractEngine()

    assert only_english.default == "eng"
    with pytest.raises(ValueError, match=r"apt-get install tesseract-ocr-deu\); installed: eng$"):
        only_english.read([np.full((40, 40, 3), 255, np.uint8)], "deu")
    with pytest.raises(ValueError, match="not installed"):
        TesseractEngine(lang="deu")  # a model whose default language is missing fails to load


def test_no_tessdata_fails_the_load_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    with pytest.raises(RuntimeError, match="install tesseract-ocr-eng"):
        TesseractEngine()
