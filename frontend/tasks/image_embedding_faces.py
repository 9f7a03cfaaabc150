"""Faces as Immich finds them: insightface's buffalo_l (SCRFD detector, ArcFace recognizer) on
ONNX Runtime, with the detection decoding, NMS and 5-point alignment of insightface's
RetinaFace / norm_crop that Immich's server runs.

Layout of `immich-app/buffalo_l`: detection/model.onnx (SCRFD: one input [1, 3, 640, 640], nine
outputs: scores, box distances and keypoint offsets for strides 8, 16 and 32, two anchors per
cell) and recognition/model.onnx (ArcFace: [n, 3, 112, 112] -> [n, 512]).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.image_embedding_immich import onnx_session

DETECTION_SIZE = 640  # Immich's input_size for RetinaFace.prepare
STRIDES = (8, 16, 32)
ANCHORS = 2
NMS_THRESHOLD = 0.4  # insightface's
ALIGNED_SIZE = 112
# ArcFace's 5-point template (eyes, nose, mouth corners) in a 112 x 112 crop
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def is_face_model(snapshot: Path) -> bool:
    return (snapshot / "detection" / "model.onnx").is_file() and (
        snapshot / "recognition" / "model.onnx"
    ).is_file()


def letterbox(rgb: np.ndarray, size: int = DETECTION_SIZE) -> tuple[np.ndarray, float]:
    """The image scaled to fit `size` x `size` at the top-left of a black canvas, and the scale
    (insightface's RetinaFace.detect: int() sizes, cv2's bilinear resize)."""
    import cv2

    height, width = rgb.shape[:2]
    if height / width > 1:
        new_height, new_width = size, int(size / (height / width))
    else:
        new_width, new_height = size, int(size * (height / width))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:new_height, :new_width] = cv2.resize(rgb, (new_width, new_height))
    return canvas, new_height / height


def anchor_centers(size: int, stride: int) -> np.ndarray:
    """[cells * ANCHORS, 2] (x, y) of each anchor: cell corners, row-major, anchors together."""
    cells = size // stride
    ys, xs = np.mgrid[:cells, :cells]
    centers = (np.stack([xs, ys], axis=-1).astype(np.float32) * stride).reshape(-1, 2)
    return np.repeat(centers, ANCHORS, axis=0)


def decode(
    outputs: list[np.ndarray], threshold: float, size: int = DETECTION_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCRFD's nine outputs -> (boxes [k, 4], scores [k], landmarks [k, 5, 2]) of the anchors
    scoring >= threshold, in detector-input pixels (insightface's distance2bbox/distance2kps)."""
    levels = len(STRIDES)
    heads = [np.asarray(o, dtype=np.float32) for o in outputs]
    heads = [h[0] if h.ndim == 3 else h for h in heads]  # batched exports: [1, N, C]
    boxes, scores, points = [], [], []
    for level, stride in enumerate(STRIDES):
        score = heads[level].reshape(-1)
        distance = heads[level + levels].reshape(-1, 4) * stride
        offsets = heads[level + 2 * levels].reshape(-1, 10) * stride
        centers = anchor_centers(size, stride)
        keep = np.where(score >= threshold)[0]
        c, d = centers[keep], distance[keep]
        boxes.append(
            np.stack(
                [c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]],
                axis=-1,
            )
        )
        scores.append(score[keep])
        points.append((np.tile(c, 5) + offsets[keep]).reshape(-1, 5, 2))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD) -> np.ndarray:
    """Indices kept by greedy NMS, best first (insightface's, with its +1 pixel areas)."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(
            0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1
        )
        overlap = width * height / (areas[best] + areas[rest] - width * height)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.intp)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (rotation, uniform scale, shift) taking `source` points nearest to
    `target` in least squares: Umeyama's method, as skimage's SimilarityTransform.estimate."""
    src = source.astype(np.float64)
    dst = target.astype(np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(s) @ sign) / ((src_c**2).sum() / len(src))
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112 x 112 crop with the five points on ArcFace's template (insightface's norm_crop)."""
    import cv2

    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    crop = cv2.warpAffine(rgb, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), borderValue=(0.0, 0.0, 0.0))
    return np.asarray(crop, dtype=np.uint8)


class FaceTask:
    """Detection per image, then one ArcFace run for every face of the batch."""

    def __init__(self, snapshot: Path, threads: int = 1, device: str = "cpu") -> None:
        self.detector = onnx_session(snapshot / "detection" / "model.onnx", threads, device)
        self.recognizer = onnx_session(snapshot / "recognition" / "model.onnx", threads, device)
        self.detector_input = self.detector.get_inputs()[0].name
        self.recognizer_input = self.recognizer.get_inputs()[0].name
        outputs = self.recognizer.get_outputs()[0].shape
        self.dimensions = int(outputs[-1]) if isinstance(outputs[-1], int) else 512

    def detect(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, ...]:
        """(boxes [k, 4] rounded, scores [k], landmarks [k, 5, 2]) in image pixels."""
        canvas, scale = letterbox(rgb)
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outputs = self.detector.run(None, {self.detector_input: blob})
        boxes, scores, points = decode(outputs, min_score)
        boxes, points = boxes / scale, points / scale
        keep = nms(boxes, scores)
        return boxes[keep].round(), scores[keep], points[keep]

    def recognize(self, crops: list[np.ndarray]) -> np.ndarray:
        """Unit-length ArcFace embeddings of aligned RGB crops."""
        if not crops:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        batch = ((np.stack(crops).astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        shape = self.recognizer.get_inputs()[0].shape[0]
        if isinstance(shape, int) and shape == 1:
            parts = [self.recognizer.run(None, {self.recognizer_input: b[None]})[0] for b in batch]
            vectors = np.concatenate(parts)
        else:
            vectors = self.recognizer.run(
                None, {self.recognizer_input: np.ascontiguousarray(batch)}
            )[0]
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(crops), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def faces(self, images: list[np.ndarray], min_score: float) -> list[list[dict[str, Any]]]:
        """Per image, its faces: box [x1, y1, x2, y2], score and a unit 512-d embedding."""
        found = [self.detect(image, min_score) for image in images]
        crops = [
            align(image, kps)
            for image, (_, _, points) in zip(images, found, strict=True)
            for kps in points
        ]
        vectors = iter(self.recognize(crops))
        return [
            [
                {"box": [float(v) for v in box], "score": float(score), "embedding": next(vectors)}
                for box, score in zip(boxes, scores, strict=True)
            ]
            for boxes, scores, _ in found
        ]
