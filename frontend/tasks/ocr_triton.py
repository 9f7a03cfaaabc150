"""The OCR model's Triton side: requests' images and languages in, JSON documents out (the
entry point model_repository/ocr/1/model.py only wires these up). Stub-only: Triton's module
is imported when a stub calls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from frontend.tasks.common import _pb_utils, images_of, input_array, run_batch
from frontend.tasks.ocr import OcrEngine, OcrResult, TesseractEngine


class OcrTask:
    """An OCR engine serving Triton batches: one read per distinct language (normally one for
    the whole batch)."""

    def __init__(self, engine: OcrEngine) -> None:
        self.engine = engine

    def execute(self, requests: list[Any]) -> list[Any]:
        return run_batch(
            requests,
            read=lambda request: images_of(input_array(request, "IMAGE")),
            infer=self.read,
            write=lambda results: [_pb_utils().Tensor("RESULT", documents(results))],
            group_key=self.language,
            name="ocr",
        )

    def language(self, request: Any) -> str | None:
        """The request's `lang` parameter, checked (ValueError fails only this request). Only
        Tesseract chooses a language per request; the other engines read what their model does
        (the frontend checks a request's languages against the model's)."""
        lang = json.loads(request.parameters() or "{}").get("lang")
        if lang is None or not isinstance(self.engine, TesseractEngine):
            return None
        if not isinstance(lang, str):
            raise ValueError("parameter lang must be a string")
        return self.engine.language(lang)

    def read(self, images: list[np.ndarray], lang: str | None) -> list[OcrResult]:
        if lang is None or not isinstance(self.engine, TesseractEngine):
            return self.engine.read(images)
        return self.engine.read(images, lang)


def documents(results: Sequence[OcrResult]) -> np.ndarray:
    """One JSON document (OcrResult.to_dict) per image, as a [N, 1] BYTES array."""
    return np.array([[json.dumps(r.to_dict()).encode()] for r in results], dtype=np.object_)
