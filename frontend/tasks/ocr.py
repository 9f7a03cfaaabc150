"""Text recognition: RapidOCR (PP-OCRv4 on ONNX Runtime, ocr_rapid), Tesseract (ocr_tesseract) or
a TrOCR-style Hugging Face model (ocr_trocr).

The engines take a whole Triton batch of RGB images and return one result per image, with
lines in reading order (blocks and columns in turn, rows along the page's skew; see ocr_layout).
"""

from __future__ import annotations

from frontend.tasks.common import builtin_engine
from frontend.tasks.ocr_rapid import REC_BATCH, RapidOcrEngine
from frontend.tasks.ocr_result import OcrEngine, OcrLine, OcrResult, ordered_result, reading_order
from frontend.tasks.ocr_tesseract import TesseractEngine
from frontend.tasks.ocr_trocr import TROCR_MAX_NEW_TOKENS, TrOcrEngine

__all__ = [
    "OcrEngine",
    "OcrLine",
    "OcrResult",
    "RapidOcrEngine",
    "TesseractEngine",
    "TrOcrEngine",
    "load_ocr_engine",
    "ordered_result",
    "reading_order",
]


def load_ocr_engine(
    hf_model: str,
    threads: int = 1,
    device: str = "cpu",
    max_new_tokens: int = TROCR_MAX_NEW_TOKENS,
    use_cls: bool = False,
    rec_batch_num: int = REC_BATCH,
    lang: str = "",
    engine: str = "auto",
) -> OcrEngine:
    """RapidOCR or Tesseract for the built-in ids ("rapidocr/...", "tesseract/..."), a
    TrOCR-style model otherwise. `lang` is Tesseract's default language ("deu"); `engine`
    "onnx" keeps RapidOCR's recogniser in fp32 (auto: int8 where it reads the probe alike)."""
    kind = builtin_engine(hf_model)
    if kind == "tesseract":
        return TesseractEngine(threads, device, lang)
    if kind is not None:
        return RapidOcrEngine(
            threads, device, use_cls=use_cls, rec_batch_num=rec_batch_num, engine=engine
        )
    return TrOcrEngine(hf_model, threads, device, max_new_tokens)
