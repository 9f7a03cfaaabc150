"""A transformers CLIP/SigLIP checkpoint served torch-free: both towers on ONNX Runtime, its image
processor redone with PIL and numpy, its tokenizer with `tokenizers`.

frontend.tasks.clip_export (a child process, the only place torch is imported) writes into the
model's cache folder, `<repo>/.onnx/<revision>/`:
  visual.onnx, textual.onnx  get_image_features / get_text_features, dynamic batch
  clip.json                  what the processor does (resize, crop, rescale, normalize) and
                             how texts are padded, read from the checkpoint's own processor
  tokenizer.json             the fast tokenizer's backend
  clip_reference.npz         transformers' vectors for PROBE_TEXTS and probe_images()
Before it serves, ClipOnnx must reproduce those vectors (cosine >= MIN_PROBE_COSINE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frontend.tasks.image_embedding_immich import onnx_session
from frontend.tasks.onnx_encoder import export_path

MIN_PROBE_COSINE = 0.9999
# Case, punctuation, unknown words, and one past every model's context (truncation)
PROBE_TEXTS = [
    "a photo of a dog on the beach",
    "ok",
    "A RED car, in the City at night!",
    "Emoji 🚀 and CJK 日本語",
    "long " * 120,
]
EXPORT_FILES = ("visual.onnx", "textual.onnx", "clip.json", "tokenizer.json", "clip_reference.npz")


def export_folder(snapshot: Path) -> Path:
    return export_path(snapshot).parent


def probe_images() -> list[np.ndarray]:
    """Landscape, portrait, square and tiny RGB images, smooth and noisy (the same every time)."""
    rng = np.random.default_rng(25)
    images = []
    for height, width in ((50, 70), (300, 97), (256, 256), (9, 13)):
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        smooth = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
        noise = rng.integers(0, 55, (height, width, 3))
        images.append(np.clip(smooth + noise, 0, 255).astype(np.uint8))
    return images


class ProcessorSpec:
    """transformers' PIL image processor for CLIP and SigLIP, as numbers from clip.json:
    resize (shortest edge, or to a fixed height x width), center crop, rescale, normalize."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.shortest_edge: int | None = spec.get("shortest_edge")
        self.resize_to: list[int] | None = spec.get("resize_to")  # [height, width]
        self.crop: list[int] | None = spec.get("crop")  # [height, width]
        self.resample = Image.Resampling(int(spec.get("resample", Image.Resampling.BICUBIC)))
        self.rescale: float | None = spec.get("rescale")
        self.mean = np.array(spec["mean"], np.float32) if spec.get("mean") else None
        self.std = np.array(spec["std"], np.float32) if spec.get("std") else None

    def _resized(self, image: Image.Image) -> Image.Image:
        if self.resize_to is not None:
            height, width = self.resize_to
            return image.resize((width, height), resample=self.resample)
        if self.shortest_edge is None:
            return image
        size, (width, height) = self.shortest_edge, image.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)  # transformers' get_resize_output_image_size
        target = (size, new_long) if width <= height else (new_long, size)
        return image.resize(target, resample=self.resample)

    @property
    def idempotent(self) -> bool:
        """Whether geometry() of its own output changes nothing (so it may run beforehand):
        not when the crop is smaller than the resize (CLIP's 256 px resize, 224 px crop)."""
        if self.crop is None:
            return True
        if self.resize_to is not None:
            return list(self.crop) == list(self.resize_to)
        return self.shortest_edge is None or list(self.crop) == [self.shortest_edge] * 2

    def geometry(self, rgb: np.ndarray) -> np.ndarray:
        """The resize and the crop, uint8 RGB in and out."""
        pixels = np.asarray(self._resized(Image.fromarray(rgb)))
        return center_crop(pixels, *self.crop) if self.crop is not None else pixels

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        pixels = self.geometry(rgb)
        out = pixels.astype(np.float32)
        if self.rescale is not None:
            out = (pixels.astype(np.float64) * self.rescale).astype(np.float32)
        if self.mean is not None and self.std is not None:
            out = (out - self.mean) / self.std
        return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' center_crop: the middle height x width, zero-padded if the image is smaller."""
    rows, columns = pixels.shape[:2]
    if rows < height or columns < width:
        padded = np.zeros((max(rows, height), max(columns, width), 3), pixels.dtype)
        top, left = (padded.shape[0] - rows) // 2, (padded.shape[1] - columns) // 2
        padded[top : top + rows, left : left + columns] = pixels
        pixels, rows, columns = padded, padded.shape[0], padded.shape[1]
    top, left = (rows - height) // 2, (columns - width) // 2
    return pixels[top : top + height, left : left + width]


class ClipOnnx:
    """Both towers of an exported checkpoint; vectors before normalization (the task's
    unit_rows normalizes, as for the torch engine)."""

    def __init__(self, folder: Path, threads: int, device: str = "cpu") -> None:
        from tokenizers import Tokenizer

        spec = json.loads((folder / "clip.json").read_text(encoding="utf-8"))
        self.preprocess = ProcessorSpec(spec["image"])
        self.visual = onnx_session(folder / "visual.onnx", threads, device)
        self.textual = onnx_session(folder / "textual.onnx", threads, device)
        self.visual_input = self.visual.get_inputs()[0].name
        self.text_inputs = [i.name for i in self.textual.get_inputs()]
        text = spec["text"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(text["max_length"]))
        self.pad_length: int | None = (
            text["max_length"] if text["padding"] == "max_length" else None
        )
        self.pad_id = int(text["pad_id"])
        self.dimensions = int(spec["dimensions"])

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        pixels = np.stack([self.preprocess(image) for image in images])
        return np.asarray(self.visual.run(None, {self.visual_input: pixels})[0], np.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        length = self.pad_length or max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        run = {name: feeds[name] for name in self.text_inputs}
        return np.asarray(self.textual.run(None, run)[0], np.float32)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)))


def torch_free_clip(snapshot: Path, threads: int, device: str = "cpu") -> tuple[ClipOnnx, float]:
    """The exported towers (exported now if missing) and their probe cosine against
    transformers; RuntimeError when they do not reproduce it."""
    from frontend.tasks.onnx_export import run_export_process

    folder = export_folder(snapshot)

    def missing() -> bool:
        return not all((folder / name).is_file() for name in EXPORT_FILES)

    if missing():
        run_export_process("frontend.tasks.clip_export", [str(snapshot)], folder, missing)
    clip = ClipOnnx(folder, threads, device)
    with np.load(folder / "clip_reference.npz", allow_pickle=False) as reference:
        images, texts = reference["images"], reference["texts"]
    cosine = min(
        min_cosine(clip.embed_images(probe_images()), images),
        min_cosine(clip.embed_texts(PROBE_TEXTS), texts),
    )
    if cosine < MIN_PROBE_COSINE:
        raise RuntimeError(
            f"ONNX CLIP differs from transformers (probe cosine {cosine:.6f} < {MIN_PROBE_COSINE})"
        )
    return clip, cosine
