"""The GPU side of the LRU policy. This machine has no GPU, so NVML's answers are stood in for;
the real NVML readings are taken on a GPU host by tools/gpu_check/."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from frontend.core.config import ModelEntry, Settings, load_settings
from frontend.core.errors import APIError
from frontend.models import gpu, lifecycle
from frontend.models.lifecycle import Lifecycle
from frontend.models.registry import Footprint, ModelRegistry, ModelUsage

GiB = 1024**3


def make(tmp_path: Path, gpu_budget_gb: float) -> tuple[Settings, ModelRegistry, Lifecycle]:
    models = {
        "text_embedding": [
            {"id": "a", "hf_model": "org/a", "device": "gpu"},
            {"id": "b", "hf_model": "org/b", "device": "gpu"},
            {"id": "cpu-only", "hf_model": "org/c", "device": "cpu"},
        ],
        "image_caption": [{"id": "big", "hf_model": "org/big", "device": "gpu"}],
    }
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models=models,
        resources={"max_gpu_memory_gb": gpu_budget_gb},
    )
    registry = ModelRegistry(settings, gateway=None)  # type: ignore[arg-type]
    return settings, registry, Lifecycle(settings, registry)


def hold(registry: ModelRegistry, gpu_bytes: dict[str, int], monkeypatch: Any) -> list[str]:
    """Mark models loaded with the GPU memory NVML would report; unload drops them."""
    unloaded: list[str] = []
    for order, name in enumerate(gpu_bytes):
        registry._loaded.add(name)
        registry.usage[name] = ModelUsage(last_used=float(order))

    async def unload(entry: ModelEntry) -> None:
        registry._loaded.discard(entry.id)
        unloaded.append(entry.id)

    monkeypatch.setattr(registry, "unload", unload)
    monkeypatch.setattr(
        registry,
        "footprint",
        lambda name: Footprint(0, gpu_bytes[name] if registry.is_loaded(name) else 0),
    )
    return unloaded


def test_without_a_gpu_nvml_answers_no_gpu() -> None:
    assert gpu.gpu_available() is False
    assert gpu.process_gpu_memory([1]) == 0
    assert gpu.gpu_memory_used() is None and gpu.gpu_memory_total() is None


def test_gpu_budget_evicts_the_least_recently_used_gpu_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "gpu_available", lambda: True)
    _, registry, policy = make(tmp_path, gpu_budget_gb=4)
    registry.gpu_footprints["big"] = 2 * GiB
    unloaded = hold(registry, {"a": 1 * GiB, "b": 1 * GiB + 1, "cpu-only": 0}, monkeypatch)

    asyncio.run(policy.make_room(registry.catalog.lookup("big")))  # type: ignore[arg-type]

    assert unloaded == ["a"]  # 1 + 1 + 2 GiB > 4 GiB: the older GPU model goes, only it


def test_gpu_budget_refuses_when_only_busy_or_pinned_models_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "gpu_available", lambda: True)
    settings, registry, policy = make(tmp_path, gpu_budget_gb=2)
    registry.gpu_footprints["big"] = 1 * GiB
    unloaded = hold(registry, {"a": 1 * GiB, "b": 1 * GiB}, monkeypatch)
    registry.usage["a"].in_flight = 1
    settings.models.text_embedding[1].pinned = True

    with pytest.raises(APIError) as caught:
        asyncio.run(policy.make_room(registry.catalog.lookup("big")))  # type: ignore[arg-type]

    assert caught.value.status == 503 and caught.value.code == "RESOURCE_EXHAUSTED"
    assert "GPU memory" in caught.value.message
    assert unloaded == []


def test_unmeasured_gpu_model_is_estimated_from_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "gpu_available", lambda: False)
    _, registry, policy = make(tmp_path, gpu_budget_gb=8)
    blobs = tmp_path / "models" / "hub" / "models--org--big" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "weights").write_bytes(b"\0" * 4096)
    entry = registry.catalog.lookup("big")
    assert entry is not None
    assert policy.on_gpu(entry) is True  # device: gpu, whatever NVML says
    assert policy.on_gpu(registry.catalog.lookup("cpu-only")) is False  # type: ignore[arg-type]
    assert policy.estimate_gpu_bytes(entry) == lifecycle.CUDA_CONTEXT_BYTES + 4096
    half = entry.model_copy(update={"fp16": True})
    assert policy.estimate_gpu_bytes(half) == lifecycle.CUDA_CONTEXT_BYTES + 2048
