"""One-off export for the torch-free embedding stub, run in a child process of its own.

    python -m frontend.tasks.onnx_export SNAPSHOT [--int8]

Torch, transformers and sentence-transformers are imported here only: the serving stub
starts this process once per model revision, waits for it and never imports them itself
(they alone are ~400 MiB of a stub's memory). It writes into `<repo>/.onnx/<revision>/`:
  model.onnx       the encoder (unless the snapshot ships onnx/model.onnx)
  tokenizer.json   when the snapshot has none (the serving side reads it with `tokenizers`)
  reference.npz    PROBE and SentenceTransformer.encode(PROBE): what the stub must reproduce
  model.int8.onnx  with --int8: ONNX Runtime dynamic quantization of the fp32 export
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontend.tasks.onnx_encoder import export_path, shipped_onnx

# Lengths from 1 token to past max_seq_length (truncation), mixed case, accents, emoji and
# CJK: a batch of these exercises padding, truncation and the tokenizer's normalizer.
PROBE = [
    "Homelab AI checks that its ONNX encoder matches sentence-transformers.",
    "ok",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "  Leading and trailing spaces  ",
    "ÜNÏCÖDÉ text, accents: café naïve résumé",
    "Emoji 🚀 and CJK 日本語のテキスト",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "numbers 3.14159 and symbols #@!$%^&*()",
    "long " * 400,
]
EXPORT_TIMEOUT_S = 900  # a 1.3 GB encoder exports in a few minutes on 2 cores


@dataclass(frozen=True)
class ExportFiles:
    model: Path
    tokenizer: Path
    reference: Path
    int8: Path


def export_files(snapshot: Path) -> ExportFiles:
    folder = export_path(snapshot).parent
    tokenizer = snapshot / "tokenizer.json"
    return ExportFiles(
        model=shipped_onnx(snapshot) or export_path(snapshot),
        tokenizer=tokenizer if tokenizer.is_file() else folder / "tokenizer.json",
        reference=folder / "reference.npz",
        int8=folder / "model.int8.onnx",
    )


def _missing(files: ExportFiles, int8: bool) -> bool:
    needed = [files.model, files.tokenizer, files.reference, *([files.int8] if int8 else [])]
    return not all(path.is_file() for path in needed)


def _python() -> str:
    # Inside Triton's stub sys.executable may be the stub binary; its PATH starts with the
    # venv's bin/ (see frontend/triton/embedded.py), so python3 there is the same interpreter.
    if Path(sys.executable).name.startswith("python"):
        return sys.executable
    return shutil.which("python3") or "python3"


def ensure_exported(snapshot: Path, int8: bool = False) -> ExportFiles:
    """The export files, made by a child process if missing (one process at a time per model)."""
    files = export_files(snapshot)
    if _missing(files, int8):
        run_export_process(
            "frontend.tasks.onnx_export",
            [str(snapshot), *(["--int8"] if int8 else [])],
            export_path(snapshot).parent,
            lambda: _missing(files, int8),
        )
    return files


def run_export_process(
    module: str, args: list[str], folder: Path, missing: Callable[[], bool]
) -> None:
    """Run `python -m module args` unless `missing()` turns false while we hold the folder's
    lock (a second instance of the model waits, then finds the files); RuntimeError with the
    tail of its output when it fails."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not missing():
            return
        # cwd: the checkout holding this package, so the child runs this very code
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUTF8": "1"}
        result = subprocess.run(
            [_python(), "-m", module, *args],
            cwd=root,
            env=env,
            capture_output=True,
            # Triton's stub runs with an ASCII locale: progress bars would not decode
            encoding="utf-8",
            errors="replace",
            timeout=EXPORT_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"ONNX export failed: {' | '.join(tail)}")


def atomic_target(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def publish(tmp: Path, target: Path) -> None:
    os.chmod(tmp, 0o644)  # Triton may run as another user than the exporting process
    os.replace(tmp, target)


def export(snapshot: Path, int8: bool) -> ExportFiles:
    """Write whatever of ExportFiles is missing (see the module docstring)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from frontend.tasks.onnx_encoder import export_encoder

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    files = export_files(snapshot)
    model = SentenceTransformer(str(snapshot), device="cpu", local_files_only=True)
    if not files.model.is_file():
        export_encoder(model[0].auto_model, model.preprocess(PROBE[:2]), files.model)
    if not files.tokenizer.is_file():
        tmp = atomic_target(files.tokenizer)
        model.tokenizer.backend_tokenizer.save(str(tmp))
        publish(tmp, files.tokenizer)
    if not files.reference.is_file():
        with torch.inference_mode():
            vectors = model.encode(PROBE, batch_size=len(PROBE), convert_to_numpy=True)
        tmp = atomic_target(files.reference).with_suffix(".npz")
        np.savez(tmp, texts=np.array(PROBE), embeddings=np.asarray(vectors, dtype=np.float32))
        publish(tmp, files.reference)
    if int8 and not files.int8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = atomic_target(files.int8)
        try:
            # Per-channel int8 weights of the constant MatMuls only. all-MiniLM-L6-v2, probe min
            # cosine vs fp32 / batch-32 speed on 2 threads: per-tensor 0.60 (the activation
            # MatMuls quantized too), MatMul per-tensor 0.61, QUInt8 0.86, per-channel 0.970 at
            # 2.1-2.3x; keeping the FFN outputs fp32 gave 0.976 at only 1.4x.
            quantize_dynamic(
                files.model,
                tmp,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            publish(tmp, files.int8)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--int8", action="store_true", help="also write the int8 model")
    args = parser.parse_args(argv)
    export(args.snapshot, args.int8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
