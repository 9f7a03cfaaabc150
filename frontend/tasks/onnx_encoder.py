"""A Hugging Face encoder on ONNX Runtime: 1.3-1.6x faster than torch eager on CPU here.

The repo's own `onnx/model.onnx` is used when the snapshot has one; otherwise the encoder is
exported once per revision into `<repo>/.onnx/<revision>/model.onnx` inside the HF cache
folder of the model (so deleting the model deletes the export too).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# ONNX Runtime's memory arena keeps its peak for the life of the session: one batch of 32
# texts at 256 tokens left an all-MiniLM-L6-v2 process at 727 MiB (232 MiB serving short
# sentences). Runs over this many tokens (batch x sequence) hand their memory back when they
# end; smaller runs, the usual traffic, keep the arena warm (no cost to their speed).
SHRINK_ABOVE_TOKENS = 2048


def export_path(snapshot: Path) -> Path:
    """Where the export for this snapshot lives (beside refs/, snapshots/, blobs/)."""
    return snapshot.parent.parent / ".onnx" / snapshot.name / "model.onnx"


def shipped_onnx(snapshot: Path) -> Path | None:
    candidate = snapshot / "onnx" / "model.onnx"
    return candidate if candidate.is_file() else None


def export_encoder(hf_model: Any, features: dict[str, Any], target: Path) -> Path:
    """Trace the encoder's last_hidden_state for dynamic batch and sequence sizes."""
    import torch

    names = [name for name in INPUT_NAMES if name in features]

    class Encoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder(hf_model).eval(),
                tuple(features[name] for name in names),
                tmp,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; Triton may run as another user
        os.replace(tmp, target)  # atomic: parallel instances may export at the same time
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


class OnnxEncoder:
    """Maps tokenizer features to token embeddings with an ONNX Runtime session.

    On "cuda:N" it runs on ONNX Runtime's CUDA provider (onnxruntime-gpu) with IO binding:
    inputs go to the GPU once and the output comes back in one copy, instead of
    session.run's per-call staging.
    """

    def __init__(self, path: Path, threads: int, device: str = "cpu") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must not spin: the frontend and Triton share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.device_id = int(device.split(":")[1]) if device.startswith("cuda") else None
        providers: list[Any] = ["CPUExecutionProvider"]
        if self.device_id is not None:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device_id}))
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        self.shrink = ort.RunOptions()
        arena = "cpu:0" if self.device_id is None else f"cpu:0;gpu:{self.device_id}"
        self.shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", arena)

    def _run_options(self, feeds: dict[str, np.ndarray]) -> Any:
        return self.shrink if feeds["input_ids"].size > SHRINK_ABOVE_TOKENS else None

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        feeds = {name: np.asarray(features[name], dtype=np.int64) for name in self.input_names}
        if self.device_id is None:
            run_options = self._run_options(feeds)
            return np.asarray(self.session.run([self.output_name], feeds, run_options)[0])
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(self.output_name, "cuda", self.device_id)
        self.session.run_with_iobinding(binding, self._run_options(feeds))
        return np.asarray(binding.copy_outputs_to_cpu()[0])
