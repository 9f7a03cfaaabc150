"""CLIP images resized and cropped in the sandbox worker that decodes them, so Triton gets the
model's 224 x 224 input (150 KB) instead of the whole photo (4.7 MB for Immich's 1440 px
previews: copied out of the sandbox, into gRPC and into the stub's shared memory).

The geometry is the model's own code (Immich's preprocess_cfg.json, or the torch-free export's
clip.json), and it is idempotent: the stub applies it again to a sized image and PIL copies an
image resized to its own size, so the vectors are bit-for-bit those of the whole photo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frontend.images.decode import ImageLimits, decode_pil
from frontend.sandbox.worker import session
from frontend.tasks.image_embedding_immich import ImmichVisualPreprocess
from frontend.tasks.image_embedding_onnx import ProcessorSpec, export_folder


@dataclass(frozen=True)
class Geometry:
    """What a model's stub does to an image before its numbers: "immich" (preprocess_cfg.json)
    or "transformers" (clip.json's image section)."""

    kind: str
    config: str  # the JSON, so the dataclass stays hashable and small to send

    def apply(self, image: Image.Image) -> np.ndarray:
        """The RGB picture at the model's input size (uint8 [H, W, 3])."""
        config: dict[str, Any] = json.loads(self.config)
        if self.kind == "immich":
            sized = ImmichVisualPreprocess(config).geometry(image)
            return np.asarray(sized.convert("RGB"), dtype=np.uint8)
        rgb = np.asarray(image, dtype=np.uint8)
        return np.ascontiguousarray(ProcessorSpec(config).geometry(rgb), dtype=np.uint8)


# Per snapshot folder (a new revision is a new folder): read once, not on every request. Only
# found geometries are kept, since a transformers checkpoint's export appears at its first load.
_GEOMETRIES: dict[Path, Geometry] = {}


def model_geometry(snapshot: Path) -> Geometry | None:
    """The geometry of an Immich CLIP export or of an exported transformers checkpoint; None
    for anything else (faces, a checkpoint not exported yet, a crop smaller than its resize)."""
    known = _GEOMETRIES.get(snapshot)
    if known is None and (known := _read_geometry(snapshot)) is not None:
        _GEOMETRIES[snapshot] = known
    return known


def _read_geometry(snapshot: Path) -> Geometry | None:
    immich = snapshot / "visual" / "preprocess_cfg.json"
    if immich.is_file():
        text = immich.read_text(encoding="utf-8")
        try:
            ImmichVisualPreprocess(json.loads(text))
        except (KeyError, ValueError, TypeError):
            return None  # the stub reports it; the whole image goes as it is
        return Geometry("immich", text)
    exported = export_folder(snapshot) / "clip.json"
    if exported.is_file():
        image = json.loads(exported.read_text(encoding="utf-8"))["image"]
        if ProcessorSpec(image).idempotent:
            return Geometry("transformers", json.dumps(image))
    return None


def decode_with(index: int, limits: ImageLimits, geometry: Geometry) -> tuple[np.ndarray, int, int]:
    """In the sandbox: the request's image `index` decoded, sized by `geometry`, and its size."""
    full = decode_pil(session()["files"][index], index, limits)  # no full-size array copy
    width, height = full.size
    return geometry.apply(full), height, width
