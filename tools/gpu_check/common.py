"""What every phase of the GPU check shares: the model ids, test inputs and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
RANDOM_MINILM = "homelab-test/random-all-MiniLM-L6-v2"
RANDOM_BLIP = "homelab-test/random-blip-image-captioning-base"
WEIGHT_FILES = {"model.safetensors", "pytorch_model.bin", "model.onnx", "README.md"}
SENTENCES = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(512)]
PROBE = [
    "A man is eating food.",
    "Homelab AI runs its models in Triton's Python backend.",
    "short",
    "The GPU computes this sentence in half precision, " * 6,
]
MIB = 1024**2


class Report:
    """PASS/FAIL lines and figures, printed as they come and kept for the JSON summary."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.figures: dict[str, Any] = {}

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        return ok

    def figure(self, name: str, value: Any, text: str) -> None:
        self.figures[name] = value
        print(f"  {text}", flush=True)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:,.0f} MiB"


def test_images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(count)]
