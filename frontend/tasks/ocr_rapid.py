"""RapidOCR as an OCR engine: PP-OCRv4 detection + recognition from rapidocr-onnxruntime's
bundled ONNX models, on fused graphs, with an int8 recogniser where it reads as fp32 does."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.ocr_rapid_steps import (
    DETECT_MAX_SIDE,
    REC_HEIGHT,
    REC_MIN_WIDTH,
    Detector,
    Recogniser,
    line_crops,
    rec_input,
)
from frontend.tasks.ocr_result import OcrLine, OcrResult, ordered_result, rgb

logger = logging.getLogger(__name__)

# Line boxes grow by this (package: 1.6): a taller crop is narrower once scaled to 48 px
# high, and recognition costs in proportion to that width (-8% CPU on the test pages, same text).
UNCLIP_RATIO = 2.0
# The package first shrinks any image whose longer side passes 2000 px, and then cuts the line
# crops for recognition from that shrunken copy: on a dense 3000x2000 page that blurred small
# print (CER 0.062 -> 0.001 without it). Detection is limited by DETECT_MAX_SIDE anyway, and
# recognition scales every crop to 48 px high, so a larger source costs only the crop copies.
CROP_MAX_SIDE = 4096
# One line per recognition run: batches are padded to their widest line, and even 4 lines of
# one width cost 1.5-1.7x the CPU per line of single runs (a 2000 px line: 82 vs 127-137 ms,
# with or without ONNX Runtime's memory arena); dense page 7.5-10 s -> 4.4 s CPU before the
# other changes, with the same text.
REC_BATCH = 1
# The 0/180 degree classifier turned correct lines of a dense page upside down (2 of 40 at the
# package's 0.9; still CER 0.15 at 0.99): off by default; when enabled, a flip needs this.
CLS_THRESHOLD = 0.99
# The Chinese recogniser sometimes writes a lone digit or letter in its full-width form
# ("castle \uff12" in the invoice table): those (not full-width punctuation) are mapped to ASCII.
FULLWIDTH_ALNUM = str.maketrans(
    {
        code: code - 0xFEE0
        for first, last in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
        for code in range(first, last + 1)
    }
)
# Recognition runs int8 (static quantization of its convolutions: -25% CPU per page, CER of
# the test pages unchanged) unless the model's engine is "onnx"; calibrated on rendered lines,
# and kept only if it reads the probe lines as fp32 does (at most this many differ).
INT8_CALIBRATION_LINES = 32
INT8_PROBE_LINES = 24
INT8_PROBE_MISREAD = 1
# The package's bundled PP-OCRv4 mobile models (rapidocr_onnxruntime/models/).
DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"


def _fused(name: str) -> bytes:
    """One of the package's bundled models, rewritten with fewer nodes (ocr_onnx.fuse)."""
    import rapidocr_onnxruntime

    from frontend.tasks.ocr_onnx import fused_model_bytes

    return fused_model_bytes(str(Path(rapidocr_onnxruntime.__file__).parent / "models" / name))


class RapidOcrEngine:
    """PP-OCRv4 detection + recognition from rapidocr-onnxruntime's bundled ONNX models."""

    def __init__(
        self,
        threads: int = 1,
        device: str = "cpu",
        use_cls: bool = False,
        rec_batch_num: int = REC_BATCH,
        engine: str = "auto",
    ):
        from rapidocr_onnxruntime import RapidOCR
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        use_cuda = device.startswith("cuda")
        self.threads = max(1, threads)
        self.engine = RapidOCR(
            det_limit_type="max",
            det_limit_side_len=DETECT_MAX_SIDE,
            max_side_len=CROP_MAX_SIDE,
            use_cls=use_cls,
            cls_thresh=CLS_THRESHOLD,
            rec_batch_num=max(1, rec_batch_num),
            # Global settings the package copies into its three ONNX Runtime sessions.
            intra_op_num_threads=max(1, threads),
            inter_op_num_threads=1,
            det_use_cuda=use_cuda,
            cls_use_cuda=use_cuda,
            rec_use_cuda=use_cuda,
        )
        det, rec = self.engine.text_det, self.engine.text_rec
        det.postprocess_op.unclip_ratio = UNCLIP_RATIO
        rec.rec_image_shape = [3, REC_HEIGHT, REC_MIN_WIDTH]
        rec.resize_norm_img = rec_input
        self.precision = "cuda" if use_cuda else "fp32"
        if not use_cuda:
            det.infer.session = self._session(_fused(DET_MODEL))
            int8 = self._try_int8_recogniser() if engine in ("auto", "onnx-int8") else None
            if int8 is not None:
                rec.session.session, self.precision = int8, "int8"
            else:
                rec.session.session = self._session(_fused(REC_MODEL), threads=1)
        self.detector = Detector(det, DetPreProcess)
        self.engine.get_crop_img_list = line_crops
        self.engine.text_det = self.detector
        self.engine.text_rec = Recogniser(rec, 1 if use_cuda else self.threads)

    def _try_int8_recogniser(self) -> Any:
        try:
            return self._int8_recogniser()
        except Exception as error:  # a read-only models dir, a quantizer failure: stay fp32
            logger.warning("int8 recogniser unavailable, recognition stays fp32: %r", error)
            return None

    def _int8_recogniser(self) -> Any:
        """The int8 recogniser from the cache, quantized (~5-15 s, once) when absent; None if
        it misread the probe lines when it was made (a marker then stops further tries)."""
        from importlib.metadata import version

        import onnxruntime as ort

        from frontend.tasks.ocr_onnx import QUANT_RECIPE, calibration_lines, quantize_int8

        cache = Path(os.environ.get("HF_HOME") or Path(tempfile.gettempdir()) / "homelab-ocr")
        name = f"{Path(REC_MODEL).stem}.{version('rapidocr-onnxruntime')}"
        target = cache / "rapidocr" / f"{name}.ort{ort.__version__}.q{QUANT_RECIPE}.int8.onnx"
        refused = target.with_suffix(".refused")
        if refused.exists():
            return None
        rec = self.engine.text_rec
        if not target.exists():
            fused = _fused(REC_MODEL)
            lines = calibration_lines(INT8_CALIBRATION_LINES, seed=0)
            inputs = [rec_input(line, line.shape[1] / line.shape[0])[None] for line in lines]
            quantize_int8(fused, inputs, target)
            session = self._session(target.read_bytes(), threads=1)
            probe = calibration_lines(INT8_PROBE_LINES, seed=1)
            rec.session.session = self._session(fused, threads=1)
            expected, _ = rec(probe)
            rec.session.session = session
            found, _ = rec(probe)
            misread = [
                (a, b)
                for (a, *_), (b, *_) in zip(expected, found, strict=True)
                if a.split() != b.split()
            ]
            if len(misread) > INT8_PROBE_MISREAD:
                logger.warning("int8 recogniser refused, it misread %s", misread[:3])
                refused.write_text(repr(misread))
                return None
            return session
        return self._session(target.read_bytes(), threads=1)

    def _session(self, model: bytes, threads: int | None = None) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or self.threads
        options.inter_op_num_threads = 1
        # Spinning worker threads burn a core each while idle between the many small runs
        # (one per text line), which instances next to each other on few cores need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def read(self, images: list[np.ndarray]) -> list[OcrResult]:
        # The detector's output sizes differ per image, so images go through one at a time.
        return [self._read_one(image) for image in images]

    def _read_one(self, image: np.ndarray) -> OcrResult:
        import cv2

        # OpenCV order; cvtColor: 1 ms on the dense 3000x2000 page, a numpy [..., ::-1] copy 18.
        bgr = cv2.cvtColor(rgb(image), cv2.COLOR_RGB2BGR)
        found, _elapsed = self.engine(bgr)
        lines = [
            OcrLine(
                text=str(text).translate(FULLWIDTH_ALNUM),
                confidence=float(np.clip(score, 0.0, 1.0)),
                box=[[float(x), float(y)] for x, y in box],
            )
            for box, text, score in found or []
        ]
        return ordered_result(lines)
