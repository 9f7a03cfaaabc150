"""Text recognition: RapidOCR (PP-OCRv4 on ONNX Runtime), Tesseract (ocr_tesseract) or a
TrOCR-style Hugging Face model.

The engines take a whole Triton batch of RGB images and return one result per image, with
lines in reading order (blocks and columns in turn, rows along the page's skew; see ocr_layout).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from frontend.tasks.common import builtin_engine, configure_threads, load_generation_model
from frontend.tasks.ocr_layout import layout

logger = logging.getLogger(__name__)

# Small inputs stay at their size; big ones are scaled down so the longer side is at most
# this (the package default scales the *shorter* side up to 736: ~10x slower on small images;
# and under limit_type "max" it silently raises the limit to 1500/2000 for larger images:
# the dense 3000x2000 page was detected at 2000 px: 0.6 s of CPU, 0.08 s at 960).
DETECT_MAX_SIDE = 960
# Small print on a big image (a 2400 px scan of 16 px print, a phone photo of a receipt)
# shrinks below what the detector separates at DETECT_MAX_SIDE (neighbouring lines merge:
# CER 0.2-0.99). The detector's text kernels (the thresholded map's line-like connected
# components, before unclipping) measure the print at that scale: when their median height is
# below SMALL_KERNEL_PX (dense page: 7 px, 16 px print on 2400x1600: 6 px), or nothing is
# found, detection runs again at the size that makes it RETRY_KERNEL_PX, up to RETRY_MAX_SIDE.
SMALL_KERNEL_PX = 6.5
RETRY_KERNEL_PX = 10.0
RETRY_MAX_SIDE = 2400
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
TROCR_MAX_NEW_TOKENS = 64
# Recognition input: crops scaled to 48 px high; the package pads narrower ones to 320 px
# wide (a short table cell cost as much as a 320 px line), here only to this width.
REC_HEIGHT = 48
REC_MIN_WIDTH = 48
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


@dataclass
class OcrLine:
    text: str
    confidence: float  # 0..1
    box: list[list[float]]  # 4 [x, y] points, clockwise from top-left, in input-image pixels
    block: int = 0  # the text block (paragraph, column, table) it belongs to, in reading order


@dataclass
class OcrResult:
    text: str  # lines of one row joined by " ", rows by "\n"
    lines: list[OcrLine]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OcrEngine(Protocol):
    def read(self, images: list[np.ndarray]) -> list[OcrResult]: ...


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
        from frontend.tasks.ocr_tesseract import TesseractEngine  # imports this module

        return TesseractEngine(threads, device, lang)
    if kind is not None:
        return RapidOcrEngine(
            threads, device, use_cls=use_cls, rec_batch_num=rec_batch_num, engine=engine
        )
    return TrOcrEngine(hf_model, threads, device, max_new_tokens)


def reading_order(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Rows in reading order (blocks and columns first, each top to bottom, left to right)."""
    return [row for block in _blocks(lines) for row in block]


def _blocks(lines: list[OcrLine]) -> list[list[list[OcrLine]]]:
    return [
        [[lines[index] for index in row] for row in block]
        for block in layout([line.box for line in lines])
    ]


def ordered_result(lines: list[OcrLine]) -> OcrResult:
    """Lines in reading order, each with its block index; one text row per output line."""
    ordered: list[OcrLine] = []
    rows: list[str] = []
    for number, block in enumerate(_blocks(lines)):
        for row in block:
            for line in row:
                line.block = number
                ordered.append(line)
            rows.append(" ".join(line.text for line in row))
    return OcrResult("\n".join(rows), ordered)


def _rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] from grey, grey+alpha or RGBA input."""
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels in (1, 2):
        image = np.repeat(image[:, :, :1], 3, axis=2)
    elif channels == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image, dtype=np.uint8)


def _whole_image_box(image: np.ndarray) -> list[list[float]]:
    height, width = float(image.shape[0]), float(image.shape[1])
    return [[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]]


def _blob(image: np.ndarray | None) -> np.ndarray | None:
    """[1, 3, H, W] float32 of (pixel / 255 - 0.5) / 0.5, the models' normalisation, in one
    pass (the package's numpy version goes through float64: 5% of the CPU of a page)."""
    if image is None:
        return None
    import cv2

    blob: np.ndarray = cv2.dnn.blobFromImage(image, 1 / 127.5, mean=(127.5, 127.5, 127.5))
    return blob


def _line_crops(image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
    """The package's get_crop_img_list (each box straightened by a perspective warp, tall
    ones turned upright) with bilinear instead of bicubic sampling: the crops are scaled to
    48 px high next anyway, and bicubic cost 3.5x the CPU (dense page: 58 -> 17 ms, 5% of its
    CPU), with the same text on the issue set."""
    import cv2

    crops = []
    for box in boxes:
        points = np.asarray(box, np.float32)
        width = int(
            max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3]))
        )
        height = int(
            max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2]))
        )
        target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        crop = cv2.warpPerspective(
            image,
            cv2.getPerspectiveTransform(points, target),
            (width, height),
            borderMode=cv2.BORDER_REPLICATE,
            flags=cv2.INTER_LINEAR,
        )
        crops.append(np.rot90(crop) if crop.shape[0] >= 1.5 * crop.shape[1] else crop)
    return crops


def _rec_input(image: np.ndarray, max_wh_ratio: float) -> np.ndarray:
    """The package's TextRecognizer.resize_norm_img: the crop scaled to REC_HEIGHT high (at
    most REC_HEIGHT * max_wh_ratio wide), normalised, zero-padded on the right."""
    import cv2

    height, width = image.shape[:2]
    padded_width = int(REC_HEIGHT * max_wh_ratio)
    resized_width = min(padded_width, math.ceil(REC_HEIGHT * width / height))
    resized = cv2.resize(image, (resized_width, REC_HEIGHT))
    out = np.zeros((3, REC_HEIGHT, padded_width), np.float32)
    out[:, :, :resized_width] = _blob(resized)[0]  # type: ignore[index]
    return out


def _fused(name: str) -> bytes:
    """One of the package's bundled models, rewritten with fewer nodes (ocr_onnx.fuse)."""
    import rapidocr_onnxruntime

    from frontend.tasks.ocr_onnx import fused_model_bytes

    return fused_model_bytes(str(Path(rapidocr_onnxruntime.__file__).parent / "models" / name))


class _Detector:
    """The package's TextDetector at DETECT_MAX_SIDE, again larger for small print."""

    def __init__(self, detector: Any, preprocess: Any):
        self.detector = detector
        self._preprocess = preprocess
        self._postprocess = detector.postprocess_op
        detector.postprocess_op = self._measured_postprocess
        self.kernel_height = 0.0  # median text kernel height at the last detection's scale
        self.sides: list[int] = []  # detection sizes used for the last image (for tests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)

    def __call__(self, image: np.ndarray) -> tuple[Any, float]:
        longer = max(image.shape[:2])
        self.sides = [min(longer, DETECT_MAX_SIDE)]
        boxes, elapsed = self._detect(image, DETECT_MAX_SIDE)
        found = boxes is not None and len(boxes) > 0
        if longer <= DETECT_MAX_SIDE or (found and self.kernel_height >= SMALL_KERNEL_PX):
            return boxes, elapsed
        wanted = DETECT_MAX_SIDE * RETRY_KERNEL_PX / max(self.kernel_height, 1.0)
        side = int(min(longer, RETRY_MAX_SIDE, wanted if found else longer))
        if side <= DETECT_MAX_SIDE:
            return boxes, elapsed
        self.sides.append(side)
        return self._detect(image, side)

    def _detect(self, image: np.ndarray, side: int) -> tuple[Any, float]:
        resize = self._preprocess(side, "max", self.detector.mean, self.detector.std).resize
        self.detector.get_preprocess = lambda _longer_side: lambda image: _blob(resize(image))
        return self.detector(image)

    def _measured_postprocess(self, pred: np.ndarray, shape: tuple[int, int]) -> Any:
        import cv2

        mask = (pred[0, 0] > self._postprocess.thresh).astype(np.uint8)
        _count, _labels, stats, _centres = cv2.connectedComponentsWithStats(mask, connectivity=4)
        heights, widths = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
        lines = heights[widths >= heights]
        self.kernel_height = float(np.median(lines)) if len(lines) else 0.0
        return self._postprocess(pred, shape)


class _Recogniser:
    """The package's TextRecognizer over a page's lines, `workers` lines at a time.

    Each line is its own run of the recognition model, too small for ONNX Runtime's threads
    to share well (they meet at each of its hundreds of nodes); whole lines on 1-thread runs
    in parallel do. Best of 6, 2 threads, whole page: dense 0.89 s on one thread, 0.69 with a
    2-thread session, 0.53 with 2 workers; two columns 0.20 / 0.18 / 0.13."""

    def __init__(self, recognizer: Any, workers: int):
        self.recognizer = recognizer
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recognizer, name)

    def __call__(self, crops: list[np.ndarray], *args: Any) -> tuple[list[Any], float]:
        if self._pool is None or len(crops) < 2:
            return self.recognizer(crops, *args)
        # Longest first, each to the least loaded worker (cost ~ width at a fixed height).
        loads = [0.0] * self.workers
        shares: list[list[int]] = [[] for _ in range(self.workers)]
        costs = [crop.shape[1] / max(1, crop.shape[0]) for crop in crops]
        for index in sorted(range(len(crops)), key=lambda i: -costs[i]):
            worker = loads.index(min(loads))
            loads[worker] += costs[index] + 1.0  # + a run's fixed cost
            shares[worker].append(index)
        runs = [
            self._pool.submit(self.recognizer, [crops[i] for i in share], *args)
            for share in shares
            if share
        ]
        found: list[Any] = [None] * len(crops)
        elapsed = 0.0
        for share, run in zip([share for share in shares if share], runs, strict=True):
            results, seconds = run.result()
            elapsed += seconds
            for index, result in zip(share, results, strict=True):
                found[index] = result
        return found, elapsed


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
        rec.resize_norm_img = _rec_input
        self.precision = "cuda" if use_cuda else "fp32"
        if not use_cuda:
            det.infer.session = self._session(_fused(DET_MODEL))
            int8 = self._try_int8_recogniser() if engine in ("auto", "onnx-int8") else None
            if int8 is not None:
                rec.session.session, self.precision = int8, "int8"
            else:
                rec.session.session = self._session(_fused(REC_MODEL), threads=1)
        self.detector = _Detector(det, DetPreProcess)
        self.engine.get_crop_img_list = _line_crops
        self.engine.text_det = self.detector
        self.engine.text_rec = _Recogniser(rec, 1 if use_cuda else self.threads)

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
            inputs = [_rec_input(line, line.shape[1] / line.shape[0])[None] for line in lines]
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
        bgr = cv2.cvtColor(_rgb(image), cv2.COLOR_RGB2BGR)
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


class TrOcrEngine:
    """A VisionEncoderDecoder line recogniser (TrOCR): each image is one text line."""

    def __init__(
        self,
        hf_model: str,
        threads: int = 1,
        device: str = "cpu",
        max_new_tokens: int = TROCR_MAX_NEW_TOKENS,
    ):
        configure_threads(threads)
        import torch
        from transformers import TrOCRProcessor, VisionEncoderDecoderModel

        self._torch = torch
        self.processor, self.model = load_generation_model(
            hf_model, VisionEncoderDecoderModel, TrOCRProcessor, device
        )
        self.device = device
        self.max_new_tokens = max_new_tokens
        eos = self.model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def read(self, images: list[np.ndarray]) -> list[OcrResult]:
        if not images:
            return []
        rgb = [_rgb(image) for image in images]
        inputs = self.processor(images=rgb, return_tensors="pt", input_data_format="channels_last")
        pixel_values = inputs["pixel_values"].to(self.device, dtype=self.model.dtype)
        with self._torch.inference_mode():
            # Greedy: the transition scores are then exactly the chosen tokens' probabilities.
            out = self.model.generate(
                pixel_values=pixel_values,
                max_new_tokens=self.max_new_tokens,
                num_beams=1,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            log_probs = self.model.compute_transition_scores(
                out.sequences, out.scores, normalize_logits=True
            )
        generated = out.sequences[:, -log_probs.shape[1] :].cpu().numpy()
        probabilities = log_probs.float().exp().cpu().numpy()
        texts = self.processor.batch_decode(out.sequences, skip_special_tokens=True)
        results = []
        for image, text, tokens, probs in zip(rgb, texts, generated, probabilities, strict=True):
            confidence = float(np.clip(np.mean(probs[: self._length(tokens)]), 0.0, 1.0))
            line = OcrLine(text.strip(), confidence, _whole_image_box(image))
            results.append(OcrResult(line.text, [line]) if line.text else OcrResult("", []))
        return results

    def _length(self, tokens: np.ndarray) -> int:
        """Generated tokens up to and including the first end token (padding follows it)."""
        for index, token in enumerate(tokens.tolist()):
            if token in self._eos:
                return index + 1
        return len(tokens)
