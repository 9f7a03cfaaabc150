"""Triton Python-backend entry point shared by every OCR model (RapidOCR, Tesseract or HF)."""

from frontend.tasks.common import load_task
from frontend.tasks.ocr import load_ocr_engine
from frontend.tasks.ocr_triton import OcrTask


class TritonPythonModel:
    def initialize(self, args):
        self.task = OcrTask(load_task(load_ocr_engine, args))

    def execute(self, requests):
        return self.task.execute(requests)
