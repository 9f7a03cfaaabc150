"""The caption task that runs inside Triton, on a tiny random BLIP: batching, order, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frontend.tasks.caption import CaptionTask
from frontend.tasks.common import ModelNotDownloaded
from tools.build_test_models import TINY_BLIP, build_test_models


def make_images() -> list[np.ndarray]:
    noise = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    red = np.zeros((40, 60, 3), np.uint8)
    red[..., 0] = 255
    thin = np.full((3, 50, 3), 200, np.uint8)  # 3 rows: not to be mistaken for channels
    return [red, noise, thin]


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    build_test_models(data, only="caption")
    return data / "models"


def load(models_home: Path, max_new_tokens: int = 30, num_beams: int = 1) -> CaptionTask:
    with pytest.MonkeyPatch.context() as patch:  # local_snapshot reads HF_HOME at call time
        patch.setenv("HF_HOME", str(models_home))
        return CaptionTask(TINY_BLIP, max_new_tokens=max_new_tokens, num_beams=num_beams)


@pytest.fixture(scope="module")
def task(models_home: Path) -> CaptionTask:
    return load(models_home)


def test_batch_gives_each_image_its_own_caption_in_order(task: CaptionTask) -> None:
    images = make_images()
    together = task.caption(images)
    assert len(together) == 3
    assert all(isinstance(text, str) and text == text.strip() and text for text in together)
    assert len(set(together)) == 3  # the tiny model tells these images apart
    assert [task.caption([image])[0] for image in images] == together
    assert task.caption(images[::-1]) == together[::-1]


@pytest.mark.parametrize("num_beams", [1, 2])
def test_fewer_new_tokens_give_shorter_captions(task: CaptionTask, num_beams: int) -> None:
    images = make_images()
    short = task.caption(images, max_new_tokens=2, num_beams=num_beams)
    full = task.caption(images, max_new_tokens=20, num_beams=num_beams)
    assert len(short) == len(full) == 3
    for brief, long in zip(short, full, strict=True):
        assert 1 <= len(brief.split()) <= 2  # one word per token in the tiny vocabulary
        assert len(brief) <= len(long)


def test_defaults_come_from_the_constructor(models_home: Path) -> None:
    task = load(models_home, max_new_tokens=3, num_beams=2)
    assert all(len(text.split()) <= 3 for text in task.caption(make_images()))


def test_fp16_is_ignored_on_the_cpu(models_home: Path, task: CaptionTask) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(models_home))
        half = CaptionTask(TINY_BLIP, fp16=True)
    assert half.precision == task.precision == "float32"
    assert half.caption(make_images()) == task.caption(make_images())


def test_empty_batch(task: CaptionTask) -> None:
    assert task.caption([]) == []


@pytest.mark.parametrize(
    "model_id", ["homelab-test/not-built", "Salesforce/blip-image-captioning-base"]
)
def test_missing_model_is_reported_without_network(models_home: Path, model_id: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(models_home))
        with pytest.raises(ModelNotDownloaded, match=model_id):
            CaptionTask(model_id)
