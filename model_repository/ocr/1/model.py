"""Triton Python-backend entry point shared by every OCR model (RapidOCR or Hugging Face)."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.common import images_of, input_array, load_task, run_batch
from frontend.tasks.ocr import load_ocr_engine


class TritonPythonModel:
    def initialize(self, args):
        self.engine = load_task(load_ocr_engine, args)

    def execute(self, requests):
        return run_batch(
            requests,
            read=lambda request: images_of(input_array(request, "IMAGE")),
            infer=lambda images, _key: self.engine.read(images),
            write=lambda results: [pb_utils.Tensor("RESULT", _documents(results))],
            name="ocr",
        )


def _documents(results):
    return np.array([[json.dumps(r.to_dict()).encode()] for r in results], dtype=np.object_)
