"""Text recognition: RapidOCR (PP-OCRv4 on ONNX Runtime), Tesseract (ocr_tesseract) or a
TrOCR-style Hugging Face model.

The engines take a whole Triton batch of RGB images and return one result per image, with
lines in reading order (blocks and columns in turn, rows along the page's skew; see ocr_layout).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from frontend.tasks.common import builtin_engine, configure_threads, load_generation_model
from frontend.tasks.ocr_layout import layout

logger = logging.getLogger(__name__)

# Small inputs stay at their size; big ones are scaled down so the longer side is at most
# this (the package default scales the *shorter* side up to 736: ~10x slower on small images).
DETECT_MAX_SIDE = 960
# The package first shrinks any image whose longer side passes 2000 px, and then cuts the line
# crops for recognition from that shrunken copy: on a dense 3000x2000 page that blurred small
# print (CER 0.062 -> 0.001 without it). Detection is limited by DETECT_MAX_SIDE anyway, and
# recognition scales every crop to 48 px high, so a larger source costs only the crop copies.
CROP_MAX_SIDE = 4096
# One line per recognition run: batches are padded to their widest line and ONNX Runtime runs
# without a memory arena here, so 6 lines at once cost 1.7-3x the CPU of 6 runs of one
# (dense page: 7.5-10 s -> 4.4 s CPU), with the same text.
REC_BATCH = 1
# The 0/180 degree classifier turned correct lines of a dense page upside down (2 of 40 at the
# package's 0.9; still CER 0.15 at 0.99): off by default; when enabled, a flip needs this.
CLS_THRESHOLD = 0.99
TROCR_MAX_NEW_TOKENS = 64


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
) -> OcrEngine:
    """RapidOCR or Tesseract for the built-in ids ("rapidocr/...", "tesseract/..."), a
    TrOCR-style model otherwise. `lang` is Tesseract's default language ("deu")."""
    engine = builtin_engine(hf_model)
    if engine == "tesseract":
        from frontend.tasks.ocr_tesseract import TesseractEngine  # imports this module

        return TesseractEngine(threads, device, lang)
    if engine is not None:
        return RapidOcrEngine(threads, device, use_cls=use_cls, rec_batch_num=rec_batch_num)
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


class RapidOcrEngine:
    """PP-OCRv4 detection + recognition from rapidocr-onnxruntime's bundled ONNX models."""

    def __init__(
        self,
        threads: int = 1,
        device: str = "cpu",
        use_cls: bool = False,
        rec_batch_num: int = REC_BATCH,
    ):
        from rapidocr_onnxruntime import RapidOCR

        use_cuda = device.startswith("cuda")
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

    def read(self, images: list[np.ndarray]) -> list[OcrResult]:
        # The detector's output sizes differ per image, so images go through one at a time.
        return [self._read_one(image) for image in images]

    def _read_one(self, image: np.ndarray) -> OcrResult:
        bgr = np.ascontiguousarray(_rgb(image)[:, :, ::-1])  # OpenCV order
        found, _elapsed = self.engine(bgr)
        lines = [
            OcrLine(
                text=str(text),
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
