"""Triton Python-backend entry point shared by every OCR model (RapidOCR, Tesseract or HF)."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.common import images_of, input_array, load_task, run_batch
from frontend.tasks.ocr import load_ocr_engine
from frontend.tasks.ocr_tesseract import TesseractEngine


class TritonPythonModel:
    def initialize(self, args):
        self.engine = load_task(load_ocr_engine, args)

    def execute(self, requests):
        # One read per distinct language (normally one for the whole batch).
        return run_batch(
            requests,
            read=lambda request: images_of(input_array(request, "IMAGE")),
            infer=self._read,
            write=lambda results: [pb_utils.Tensor("RESULT", _documents(results))],
            group_key=self._language,
            name="ocr",
        )

    def _language(self, request):
        """The request's `lang` parameter, checked (ValueError fails only this request). Only
        Tesseract chooses a language per request; the other engines read what their model does
        (the frontend checks a request's languages against the model's)."""
        lang = json.loads(request.parameters() or "{}").get("lang")
        if lang is None or not isinstance(self.engine, TesseractEngine):
            return None
        if not isinstance(lang, str):
            raise ValueError("parameter lang must be a string")
        return self.engine.language(lang)

    def _read(self, images, lang):
        if lang is None:
            return self.engine.read(images)
        return self.engine.read(images, lang)


def _documents(results):
    return np.array([[json.dumps(r.to_dict()).encode()] for r in results], dtype=np.object_)
