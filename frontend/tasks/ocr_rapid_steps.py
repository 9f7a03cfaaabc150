"""RapidOCR's detection and recognition steps, reshaped for CPU cost: a detector that measures
its text and runs again larger for small print, line crops, recognition inputs, and a
recogniser that spreads a page's lines over worker threads."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

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
# Recognition input: crops scaled to 48 px high; the package pads narrower ones to 320 px
# wide (a short table cell cost as much as a 320 px line), here only to this width.
REC_HEIGHT = 48
REC_MIN_WIDTH = 48


def blob(image: np.ndarray | None) -> np.ndarray | None:
    """[1, 3, H, W] float32 of (pixel / 255 - 0.5) / 0.5, the models' normalisation, in one
    pass (the package's numpy version goes through float64: 5% of the CPU of a page)."""
    if image is None:
        return None
    import cv2

    blob: np.ndarray = cv2.dnn.blobFromImage(image, 1 / 127.5, mean=(127.5, 127.5, 127.5))
    return blob


def line_crops(image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
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


def rec_input(image: np.ndarray, max_wh_ratio: float) -> np.ndarray:
    """The package's TextRecognizer.resize_norm_img: the crop scaled to REC_HEIGHT high (at
    most REC_HEIGHT * max_wh_ratio wide), normalised, zero-padded on the right."""
    import cv2

    height, width = image.shape[:2]
    padded_width = int(REC_HEIGHT * max_wh_ratio)
    resized_width = min(padded_width, math.ceil(REC_HEIGHT * width / height))
    resized = cv2.resize(image, (resized_width, REC_HEIGHT))
    out = np.zeros((3, REC_HEIGHT, padded_width), np.float32)
    out[:, :, :resized_width] = blob(resized)[0]  # type: ignore[index]
    return out


class Detector:
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
        self.detector.get_preprocess = lambda _longer_side: lambda image: blob(resize(image))
        return self.detector(image)

    def _measured_postprocess(self, pred: np.ndarray, shape: tuple[int, int]) -> Any:
        import cv2

        mask = (pred[0, 0] > self._postprocess.thresh).astype(np.uint8)
        _count, _labels, stats, _centres = cv2.connectedComponentsWithStats(mask, connectivity=4)
        heights, widths = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
        lines = heights[widths >= heights]
        self.kernel_height = float(np.median(lines)) if len(lines) else 0.0
        return self._postprocess(pred, shape)


class Recogniser:
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
