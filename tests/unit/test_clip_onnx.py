"""The torch-free CLIP/SigLIP engine's preprocessing against transformers' own image processors
(PIL backend), and its export and probe on the tiny transformers CLIP."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from frontend.tasks.image_embedding_onnx import ProcessorSpec, center_crop, probe_images

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGES = [
    *probe_images(),
    np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    np.random.default_rng(2).integers(0, 256, (31, 33, 3), dtype=np.uint8),
]


def transformers_pixels(processor: Any, image: np.ndarray) -> np.ndarray:
    from PIL import Image

    pixels = processor(images=[Image.fromarray(image)], return_tensors="np")["pixel_values"]
    return np.asarray(pixels[0])


@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_clip_preprocessing_equals_clip_image_processor(index: int) -> None:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from frontend.tasks.clip_export import image_spec

    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
        image_mean=CLIP_MEAN, image_std=CLIP_STD,
    )  # fmt: skip
    ours = ProcessorSpec(image_spec(processor))(IMAGES[index])
    np.testing.assert_allclose(ours, transformers_pixels(processor, IMAGES[index]), atol=1e-5)


@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_siglip_preprocessing_equals_siglip_image_processor(index: int) -> None:
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from frontend.tasks.clip_export import image_spec

    processor = SiglipImageProcessorPil(size={"height": 24, "width": 24})
    spec = image_spec(processor)
    assert spec["crop"] is None and spec["resize_to"] == [24, 24]
    ours = ProcessorSpec(spec)(IMAGES[index])
    np.testing.assert_allclose(ours, transformers_pixels(processor, IMAGES[index]), atol=1e-5)


def test_center_crop_pads_images_smaller_than_the_crop() -> None:
    pixels = np.full((4, 6, 3), 9, dtype=np.uint8)
    crop = center_crop(pixels, 8, 8)
    assert crop.shape == (8, 8, 3)
    assert crop[2:6, 1:7].min() == 9 and crop.sum() == 9 * 4 * 6 * 3


def test_a_transformers_clip_serves_torch_free_and_matches_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exported once into the model's cache folder, probed, then served by ONNX Runtime."""
    from frontend.tasks.image_embedding import ImageEmbeddingTask, TransformersClip
    from frontend.tasks.image_embedding_onnx import export_folder
    from tools.build_test_models import TINY_CLIP, build_test_models

    build_test_models(tmp_path, "clip")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "models"))
    task = ImageEmbeddingTask(TINY_CLIP)
    assert task.engine == "onnx" and task.probe_cosine is not None
    assert task.probe_cosine >= 0.9999
    snapshot = next((tmp_path / "models" / "hub").glob("models--*tiny-clip/snapshots/*"))
    assert (export_folder(snapshot) / "visual.onnx").is_file()
    assert "onnxruntime" in sys.modules
    reference = TransformersClip(snapshot, 1, "cpu", False)
    texts = ["a red car in the city", "dog", "snow " * 40]
    for ours, theirs in (
        (task.embed_images(IMAGES), reference.embed_images(IMAGES)),
        (task.embed_texts(texts), reference.embed_texts(texts)),
    ):
        assert np.min(np.sum(ours * theirs, axis=1)) >= 0.9999
    torch_task = ImageEmbeddingTask(TINY_CLIP, engine="torch")
    assert torch_task.engine == "torch"


IMMICH_CONFIGS = [
    {"size": [32, 32], "mean": CLIP_MEAN, "std": CLIP_STD, "interpolation": "bicubic"},
    {"size": 24, "mean": [0.5] * 3, "std": [0.5] * 3, "resize_mode": "squash"},
]
TRANSFORMERS_SPECS = [
    {"shortest_edge": 32, "crop": [32, 32], "resample": 3, "rescale": 1 / 255,
     "mean": CLIP_MEAN, "std": CLIP_STD},
    {"resize_to": [24, 24], "resample": 2, "rescale": 1 / 255, "mean": [0.5] * 3,
     "std": [0.5] * 3},
]  # fmt: skip


@pytest.mark.parametrize("config", IMMICH_CONFIGS)
@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_sizing_first_gives_immichs_exact_input(config: dict[str, Any], index: int) -> None:
    """What the sandbox sends (frontend.images.clip_inputs) preprocesses to the same bits."""
    from frontend.images.clip_inputs import Geometry
    from frontend.tasks.image_embedding_immich import ImmichVisualPreprocess

    preprocess = ImmichVisualPreprocess(config)
    sized = Geometry("immich", json.dumps(config)).apply(Image.fromarray(IMAGES[index]))
    assert sized.shape[:2] == (preprocess.size, preprocess.size)
    np.testing.assert_array_equal(preprocess(sized), preprocess(IMAGES[index]))


@pytest.mark.parametrize("spec", TRANSFORMERS_SPECS)
@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_sizing_first_gives_the_exported_models_exact_input(
    spec: dict[str, Any], index: int
) -> None:
    from frontend.images.clip_inputs import Geometry

    processor = ProcessorSpec(spec)
    assert processor.idempotent
    sized = Geometry("transformers", json.dumps(spec)).apply(Image.fromarray(IMAGES[index]))
    np.testing.assert_array_equal(processor(sized), processor(IMAGES[index]))


def test_a_crop_smaller_than_the_resize_is_not_sized_first() -> None:
    spec = {"shortest_edge": 256, "crop": [224, 224], "resample": 3}
    assert not ProcessorSpec(spec).idempotent


def test_a_transformers_siglip_serves_torch_free_and_matches_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SigLIP's branch: squashed images, no crop, texts padded to 64 tokens."""
    import torch

    from frontend.models.cache import import_model
    from frontend.tasks.image_embedding import ImageEmbeddingTask, TransformersClip
    from tools.build_clip_models import save_tiny_siglip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_tiny_siglip(tmp_path / "siglip")
    hub = tmp_path / "models" / "hub"
    snapshot = import_model(tmp_path / "siglip", "homelab-test/tiny-siglip", hub).snapshot
    monkeypatch.setenv("HF_HOME", str(tmp_path / "models"))
    task = ImageEmbeddingTask("homelab-test/tiny-siglip")
    assert task.engine == "onnx"
    reference = TransformersClip(snapshot, 1, "cpu", False)
    assert reference.siglip
    texts = ["a dog on the beach", "snow " * 80]
    for ours, theirs in (
        (task.embed_images(IMAGES), reference.embed_images(IMAGES)),
        (task.embed_texts(texts), reference.embed_texts(texts)),
    ):
        assert np.min(np.sum(ours * theirs, axis=1)) >= 0.9999
