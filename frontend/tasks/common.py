"""Helpers shared by every task model: offline snapshot lookup, threads, device choice."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


class ModelNotDownloaded(RuntimeError):
    """The weights are not in the local cache; loading never reaches for the network."""


def local_snapshot(hf_model: str) -> Path:
    """Path of the cached snapshot, found without any network access or hub retries."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    hub = hub_cache_dir()
    try:
        return Path(snapshot_download(hf_model, cache_dir=hub, local_files_only=True))
    except LocalEntryNotFoundError:
        raise ModelNotDownloaded(
            f"model {hf_model} is not in the cache under {hub}; download or import it first"
        ) from None


def hub_cache_dir() -> Path:
    """The hub cache as the environment says now (huggingface_hub freezes it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def configure_threads(threads: int) -> None:
    """Pin torch's intra-op threads: spin-waiting threads collapse throughput on shared CPUs."""
    import torch

    torch.set_num_threads(max(1, threads))
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def torch_device(instance_kind: str, device_id: str | int) -> str:
    """The torch device for a Triton instance: its GPU for KIND_GPU, else the CPU."""
    if instance_kind.upper().endswith("GPU"):
        return f"cuda:{int(device_id)}"
    return "cpu"


BUILTIN_PREFIX = "rapidocr/"


def is_builtin(hf_model: str) -> bool:
    """Engines whose weights ship inside a Python package (no Hugging Face download)."""
    return hf_model.lower().startswith(BUILTIN_PREFIX)


def model_parameters(args: dict[str, Any]) -> dict[str, str]:
    """The string parameters of a Triton model config, from initialize()'s args."""
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def images_of(array: np.ndarray) -> list[np.ndarray]:
    """A request's IMAGE tensor, [n, H, W, 3] uint8, as n images; ValueError if malformed."""
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise ValueError(f"IMAGE must be uint8 [n, H, W, 3], got {array.dtype} {array.shape}")
    return list(array)


def request_settings(parameters_json: str, allowed: dict[str, int]) -> dict[str, int]:
    """Integer request parameters named in `allowed` (name -> upper bound); ValueError if bad."""
    parameters = json.loads(parameters_json or "{}")
    settings = {}
    for name, bound in allowed.items():
        if name in parameters:
            value = parameters[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                raise ValueError(f"parameter {name} must be an integer from 1 to {bound}")
            settings[name] = value
    return settings


def load_generation_model(
    hf_model: str, model_class: Any, processor_class: Any, device: str, fp16: bool = False
) -> tuple[Any, Any]:
    """(processor, model in eval mode on `device`) for a transformers generation checkpoint.

    AutoProcessor picks the processor the checkpoint records; `processor_class` is the
    fallback for checkpoints saved without one. Both come from the local cache only.
    """
    from transformers import AutoProcessor

    snapshot = local_snapshot(hf_model)
    processor: Any = AutoProcessor.from_pretrained(snapshot, local_files_only=True)
    if not hasattr(processor, "image_processor"):  # no processor_class recorded
        processor = processor_class.from_pretrained(snapshot, local_files_only=True)
    # Any: transformers' decorated `to` does not type-check, and `generate` returns a Union.
    model: Any = model_class.from_pretrained(snapshot, local_files_only=True)
    if fp16 and device.startswith("cuda"):
        model = model.half()
    return processor, model.to(device).eval()
