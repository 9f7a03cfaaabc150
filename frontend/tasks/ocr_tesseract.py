"""Tesseract 5 as an OCR engine: tesserocr (libtesseract in-process) on Debian's traineddata.

The same result shape as RapidOCR: lines with 4-point boxes, confidences 0..1 and block
indexes, in the project's reading order (ocr_layout), so callers can switch engines freely.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from frontend.tasks.ocr_languages import (
    debian_package,
    installed_languages,
    parse_lang,
    tessdata_dir,
)
from frontend.tasks.ocr_result import OcrLine, OcrResult, ordered_result, rgb

DEFAULT_LANGUAGE = "eng"
# Each language set is one initialised Tesseract (the traineddata of `deu+eng` loaded once,
# ~70 ms and 10-30 MB per language); the least recently used beyond this are closed.
MAX_LANGUAGE_SETS = 4
_WORD, _LINE = 5, 4  # TSV levels


class TesseractEngine:
    """Reads whole pages (page segmentation mode 3, automatic) in the languages asked for.

    The tesserocr wheel's libtesseract is built without OpenMP: one thread per instance, so
    `threads` has no effect; more `instances` read more pages at once."""

    def __init__(self, threads: int = 1, device: str = "cpu", lang: str = "") -> None:
        import tesserocr

        self._tesserocr: Any = tesserocr
        folder = tessdata_dir()
        found = installed_languages(folder)
        if folder is None or not found:
            raise RuntimeError(
                f"no Tesseract language data found; install {debian_package(DEFAULT_LANGUAGE)} "
                "(tools/install.sh does) or set TESSDATA_PREFIX"
            )
        self.folder = str(folder)
        self.installed = frozenset(found)
        # The model's default: its first configured language, else English (else any).
        fallback = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in self.installed else found[0]
        self.default = self.language(lang or fallback)
        self._apis: OrderedDict[str, Any] = OrderedDict()
        self._api(self.default)  # load the default's traineddata now, not on the first page

    def language(self, lang: str) -> str:
        """`lang` ("deu+eng", "de") as Tesseract's language string; ValueError when a code is
        unknown or its traineddata is not installed (naming the Debian package)."""
        codes = parse_lang(lang)
        missing = [code for code in codes if code not in self.installed]
        if missing:
            packages = " ".join(debian_package(code) for code in missing)
            raise ValueError(
                f"language {'+'.join(missing)} is not installed (Debian: apt-get install "
                f"{packages}); installed: {', '.join(sorted(self.installed))}"
            )
        return "+".join(codes)

    def read(self, images: list[np.ndarray], lang: str | None = None) -> list[OcrResult]:
        api = self._api(self.default if lang is None else self.language(lang))
        return [self._read_one(api, image) for image in images]

    def _api(self, lang: str) -> Any:
        if lang in self._apis:
            self._apis.move_to_end(lang)
            return self._apis[lang]
        tesserocr = self._tesserocr
        api = tesserocr.PyTessBaseAPI(
            path=self.folder, lang=lang, psm=tesserocr.PSM.AUTO, oem=tesserocr.OEM.LSTM_ONLY
        )
        self._apis[lang] = api
        while len(self._apis) > MAX_LANGUAGE_SETS:
            _, oldest = self._apis.popitem(last=False)
            oldest.End()
        return api

    def _read_one(self, api: Any, image: np.ndarray) -> OcrResult:
        pixels = rgb(image)
        height, width = pixels.shape[:2]
        # Raw pixels: SetImage(PIL) would encode and decode the page once more.
        api.SetImageBytes(pixels.tobytes(), width, height, 3, 3 * width)
        api.Recognize()
        tsv = api.GetTSVText(0)
        api.Clear()
        return ordered_result(lines_from_tsv(tsv))


def lines_from_tsv(tsv: str) -> list[OcrLine]:
    """Tesseract's TSV (`tesseract img - tsv`, or GetTSVText) as one OcrLine per text line:
    its words joined by spaces, the line's box, confidence = mean word confidence / 100."""
    boxes: dict[tuple[int, ...], list[list[float]]] = {}
    words: dict[tuple[int, ...], list[tuple[str, float, list[list[float]]]]] = {}
    for row in tsv.splitlines():
        cols = row.split("\t")
        if len(cols) < 12 or not cols[0].isdigit():  # the CLI's header row, blank lines
            continue
        level = int(cols[0])
        key = tuple(int(col) for col in cols[1:5])  # page, block, paragraph, line
        left, top, width, height = (float(col) for col in cols[6:10])
        box = [[left, top], [left + width, top], [left + width, top + height], [left, top + height]]
        if level == _LINE:
            boxes[key] = box
        elif level == _WORD and cols[11].strip():
            words.setdefault(key, []).append((cols[11].strip(), float(cols[10]), box))
    lines = []
    for key, found in words.items():
        confidences = [max(conf, 0.0) for _, conf, _ in found]
        lines.append(
            OcrLine(
                text=" ".join(text for text, _, _ in found),
                confidence=float(np.clip(np.mean(confidences) / 100, 0.0, 1.0)),
                box=boxes.get(key) or _union([box for _, _, box in found]),
            )
        )
    return lines


def _union(boxes: list[list[list[float]]]) -> list[list[float]]:
    left = min(box[0][0] for box in boxes)
    top = min(box[0][1] for box in boxes)
    right = max(box[2][0] for box in boxes)
    bottom = max(box[2][1] for box in boxes)
    return [[left, top], [right, top], [right, bottom], [left, bottom]]
