"""One-off export of a transformers CLIP/SigLIP checkpoint for the torch-free image-embedding
engine (frontend.tasks.image_embedding_onnx), run in a child process of its own:

    python -m frontend.tasks.clip_export SNAPSHOT

Torch and transformers are imported here only. It writes image_embedding_onnx.EXPORT_FILES
into the model's `<repo>/.onnx/<revision>/`, each file atomically.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.image_embedding_onnx import PROBE_TEXTS, export_folder, probe_images
from frontend.tasks.onnx_export import atomic_target, publish
from frontend.tasks.snapshot_task import export_main

SIGLIP_TYPES = ("siglip", "siglip2")
SIGLIP_TEXT_LENGTH = 64  # as frontend.tasks.image_embedding pads SigLIP's texts


def _features(output: Any) -> Any:
    return output if hasattr(output, "float") else output.pooler_output


def image_spec(processor: Any) -> dict[str, Any]:
    """The image processor's steps as numbers (PIL backend semantics)."""
    size = dict(processor.size or {}) if processor.do_resize else {}
    crop = dict(processor.crop_size or {}) if getattr(processor, "do_center_crop", False) else {}
    if size and not ("shortest_edge" in size or {"height", "width"} <= set(size)):
        raise ValueError(f"unsupported image processor size {size}")
    return {
        "shortest_edge": size.get("shortest_edge"),
        "resize_to": [size["height"], size["width"]] if "height" in size else None,
        "crop": [crop["height"], crop["width"]] if crop else None,
        "resample": int(processor.resample),
        "rescale": float(processor.rescale_factor) if processor.do_rescale else None,
        "mean": list(processor.image_mean) if processor.do_normalize else None,
        "std": list(processor.image_std) if processor.do_normalize else None,
    }


def text_options(model: Any, tokenizer: Any) -> dict[str, Any]:
    """How frontend.tasks.image_embedding.TransformersClip pads and truncates."""
    if model.config.model_type in SIGLIP_TYPES:
        return {"padding": "max_length", "max_length": SIGLIP_TEXT_LENGTH}
    return {"padding": True, "max_length": tokenizer.model_max_length}


def _export(module: Any, inputs: tuple[Any, ...], names: list[str], axes: dict[str, Any],
            target: Path) -> None:  # fmt: skip
    import torch

    tmp = atomic_target(target)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, inputs, str(tmp), input_names=names, output_names=["embedding"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    publish(tmp, target)


def export(snapshot: Path) -> None:
    import torch
    from transformers import AutoModel, AutoProcessor

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    folder = export_folder(snapshot)
    folder.mkdir(parents=True, exist_ok=True)
    processor: Any = AutoProcessor.from_pretrained(snapshot, local_files_only=True)
    model: Any = AutoModel.from_pretrained(snapshot, local_files_only=True).eval()
    tokenizer = processor.tokenizer
    options = text_options(model, tokenizer)
    from PIL import Image

    pictures = [Image.fromarray(image) for image in probe_images()]
    pixels = processor(images=pictures, return_tensors="pt")["pixel_values"]
    tokens = tokenizer(PROBE_TEXTS, truncation=True, return_tensors="pt", **options)
    names = [name for name in ("input_ids", "attention_mask") if name in tokens]

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return _features(self.model.get_image_features(pixel_values=pixel_values))

    class Textual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return _features(self.model.get_text_features(**dict(zip(names, inputs, strict=True))))

    with torch.inference_mode():
        image_vectors = Visual()(pixels).float().numpy()
        text_vectors = Textual()(*(tokens[n] for n in names)).float().numpy()
    batch = {"embedding": {0: "batch"}}
    visual_axes = {"pixel_values": {0: "batch"}, **batch}
    _export(Visual(), (pixels[:2],), ["pixel_values"], visual_axes, folder / "visual.onnx")
    text_axes = {**{name: {0: "batch", 1: "sequence"} for name in names}, **batch}
    examples = tuple(tokens[name][:2] for name in names)
    _export(Textual(), examples, names, text_axes, folder / "textual.onnx")
    tmp = atomic_target(folder / "tokenizer.json")
    tokenizer.backend_tokenizer.save(str(tmp))
    publish(tmp, folder / "tokenizer.json")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    spec = {
        "image": image_spec(processor.image_processor),
        "text": {
            "padding": "max_length" if options["padding"] == "max_length" else "longest",
            "max_length": int(options["max_length"]),
            "pad_id": int(pad_id),
        },
        "dimensions": int(image_vectors.shape[1]),
    }
    tmp = atomic_target(folder / "clip.json")
    tmp.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    publish(tmp, folder / "clip.json")
    # last: its presence says the export is whole
    tmp = atomic_target(folder / "clip_reference.npz").with_suffix(".npz")
    np.savez(tmp, images=image_vectors, texts=text_vectors)
    publish(tmp, folder / "clip_reference.npz")


def main(argv: list[str] | None = None) -> int:
    return export_main(export, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
