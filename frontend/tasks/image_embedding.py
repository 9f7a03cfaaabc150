"""Image embedding: images and texts into one vector space, one forward per batch and kind.

The checkpoint's files choose the engine:
  Immich's ONNX layout   visual/ + textual/ (frontend.tasks.image_embedding_immich): the vectors
                         Immich's own server computes, on ONNX Runtime.
  buffalo_l faces        detection/ + recognition/ (frontend.tasks.image_embedding_faces): faces
                         found, aligned and embedded as Immich does.
  transformers           CLIPModel, SiglipModel, Siglip2Model (anything AutoModel loads with
                         get_image_features / get_text_features). On a CPU ("auto", "onnx"):
                         torch-free, both towers exported once to ONNX and checked against
                         transformers on a probe before serving
                         (frontend.tasks.image_embedding_onnx); "torch", a GPU, or an export
                         that fails its probe under "auto": torch, fp16 on a GPU. Its vectors
                         are unit length (what cosine search wants).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.common import configure_threads
from frontend.tasks.image_embedding_faces import FaceTask, is_face_model
from frontend.tasks.image_embedding_immich import ImmichClip, is_immich_clip
from frontend.tasks.image_embedding_onnx import ClipOnnx, torch_free_clip
from frontend.tasks.snapshot_task import SnapshotTask

logger = logging.getLogger(__name__)

SIGLIP_TYPES = ("siglip", "siglip2")
SIGLIP_TEXT_LENGTH = 64  # SigLIP's text tower was trained on max_length padding


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _features(output: Any) -> Any:
    """transformers 5 returns an output object from get_*_features; 4.x returned the tensor."""
    return output if hasattr(output, "float") else output.pooler_output


class TransformersClip:
    def __init__(self, snapshot: Path, threads: int, device: str, fp16: bool) -> None:
        configure_threads(threads)
        import torch
        from transformers import AutoModel, AutoProcessor

        self._torch = torch
        self.processor: Any = AutoProcessor.from_pretrained(snapshot, local_files_only=True)
        model: Any = AutoModel.from_pretrained(snapshot, local_files_only=True)
        if fp16 and device.startswith("cuda"):
            model = model.half()
        self.model = model.to(device).eval()
        self.device = device
        self.siglip = model.config.model_type in SIGLIP_TYPES
        projection = getattr(model.config, "projection_dim", None)
        text_config = getattr(model.config, "text_config", None)
        self.dimensions = int(projection or getattr(text_config, "hidden_size", 0) or 0)

    def _on_device(self, inputs: Any) -> dict[str, Any]:
        dtype = next(self.model.parameters()).dtype
        moved = {}
        for key, value in inputs.items():
            value = value.to(self.device)
            moved[key] = value.to(dtype) if value.is_floating_point() else value
        return moved

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        from PIL import Image

        pictures = [Image.fromarray(image) for image in images]
        inputs = self.processor(images=pictures, return_tensors="pt")
        with self._torch.inference_mode():
            output = self.model.get_image_features(**self._on_device(inputs))
        return unit_rows(_features(output).float().cpu().numpy())

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        tokenizer = self.processor.tokenizer
        if self.siglip:
            options: dict[str, Any] = {"padding": "max_length", "max_length": SIGLIP_TEXT_LENGTH}
        else:
            options = {"padding": True, "max_length": tokenizer.model_max_length}
        inputs = tokenizer(texts, truncation=True, return_tensors="pt", **options)
        with self._torch.inference_mode():
            output = self.model.get_text_features(**self._on_device(inputs))
        return unit_rows(_features(output).float().cpu().numpy())


class OnnxTransformersClip:
    """A transformers checkpoint on its ONNX export: unit-length vectors like TransformersClip."""

    def __init__(self, clip: ClipOnnx) -> None:
        self.clip = clip

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return unit_rows(self.clip.embed_images(images))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self.clip.embed_texts(texts))


Clip = ImmichClip | TransformersClip | OnnxTransformersClip


class ImageEmbeddingTask(SnapshotTask):
    """One image-embedding checkpoint: `engine` names what serves it (immich-onnx, faces,
    onnx: a transformers checkpoint torch-free, torch); `faces` is set for face models, which
    answer per image with their faces; `probe_cosine` is the onnx engine's match to torch."""

    def load(self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str) -> None:
        self.faces: FaceTask | None = None
        self.clip: Clip | None = None
        self.probe_cosine: float | None = None
        if is_face_model(snapshot):
            self.faces = FaceTask(snapshot, threads, device)
            self.engine, self.dimensions = "faces", self.faces.dimensions
        elif is_immich_clip(snapshot):
            self.clip = ImmichClip(snapshot, threads, device)
            self.engine = "immich-onnx"
            self.dimensions = self.clip.dimensions or int(self.clip.embed_texts(["ok"]).shape[1])
        else:
            self._load_transformers(snapshot, threads, device, fp16, engine)

    def _load_transformers(
        self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str
    ) -> None:
        # ONNX Runtime's CUDA provider needs onnxruntime-gpu: a GPU takes torch unless "onnx"
        if engine == "onnx" or (engine == "auto" and device == "cpu"):
            try:
                onnx, self.probe_cosine = torch_free_clip(snapshot, threads, device)
            except Exception as exc:
                if engine == "onnx":
                    raise
                logger.warning("torch-free CLIP unavailable (%s: %s); using torch",
                               type(exc).__name__, exc)  # fmt: skip
            else:
                self.clip, self.engine = OnnxTransformersClip(onnx), "onnx"
                self.dimensions = onnx.dimensions
                return
        elif engine not in ("auto", "torch"):
            raise ValueError(f"engine {engine!r} is not available for image embedding")
        clip = TransformersClip(snapshot, threads, device, fp16)
        self.clip, self.engine, self.dimensions = clip, "torch", clip.dimensions

    def _clip(self) -> Clip:
        if self.clip is None:
            raise ValueError("this is a face model: it embeds faces found in images, not texts")
        return self.clip

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return self._clip().embed_images(images)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return self._clip().embed_texts(texts)
