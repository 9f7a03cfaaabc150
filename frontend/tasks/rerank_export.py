"""One-off export for the torch-free rerank stub, run in a child process of its own.

    python -m frontend.tasks.rerank_export SNAPSHOT

As for embeddings (frontend.tasks.onnx_export), torch, transformers and sentence-transformers
are imported here only. It loads the snapshot as sentence-transformers' CrossEncoder and
writes into `<repo>/.onnx/<revision>/rerank/`:
  model.onnx      the sequence classifier: tokenizer features -> logits [batch, labels]
  tokenizer.json  the model's fast tokenizer (truncation and padding are set by the stub)
  meta.json       what CrossEncoder does around the network: max_length, activation, labels
  reference.npz   PROBE pairs and CrossEncoder.predict's raw logits for them, which the stub
                  must reproduce before it serves
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.onnx_encoder import export_path
from frontend.tasks.onnx_export import atomic_target, publish, run_export_process
from frontend.tasks.snapshot_task import export_main

# Short and long pairs (past any test model's 64 positions: truncation), accents, emoji, CJK:
# padding, longest-first truncation and the normalizer all take part.
PROBE = [
    ("what is a homelab?", "A homelab is a server you run at home to learn and self-host."),
    ("ok", "ok"),
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("Ünïcödé query café", "Emoji 🚀 and CJK 日本語のテキスト in the document"),
    ("long query " * 40, "short document"),
    ("short query", "the quick brown fox jumps over the lazy dog " * 60),
]
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class RerankExport:
    model: Path
    tokenizer: Path
    meta: Path
    reference: Path

    def missing(self) -> bool:
        return not all(p.is_file() for p in (self.model, self.tokenizer, self.meta, self.reference))


def rerank_export_files(snapshot: Path) -> RerankExport:
    folder = export_path(snapshot).parent / "rerank"
    names = ("model.onnx", "tokenizer.json", "meta.json", "reference.npz")
    return RerankExport(*(folder / name for name in names))


def ensure_rerank_exported(snapshot: Path) -> RerankExport:
    """The export files, made by a child process if missing."""
    files = rerank_export_files(snapshot)
    if files.missing():
        run_export_process(
            "frontend.tasks.rerank_export", [str(snapshot)], files.model.parent, files.missing
        )
    return files


def _qualified_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _export_classifier(network: Any, features: dict[str, Any], target: Path) -> None:
    import torch

    names = [name for name in INPUT_NAMES if name in features]

    class Classifier(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    tmp = atomic_target(target)
    with torch.no_grad():
        torch.onnx.export(
            Classifier(network).eval(),
            tuple(features[name] for name in names),
            str(tmp),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    publish(tmp, target)


def export(snapshot: Path) -> RerankExport:
    """Write every file of RerankExport (see the module docstring)."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    files = rerank_export_files(snapshot)
    files.model.parent.mkdir(parents=True, exist_ok=True)
    model = CrossEncoder(str(snapshot), device="cpu", local_files_only=True)
    tokenizer = model.tokenizer
    max_length = int(model.max_seq_length)
    queries, documents = [q for q, _ in PROBE], [d for _, d in PROBE]
    features = tokenizer(
        queries[:2], documents[:2], padding=True, truncation=True,
        max_length=max_length, return_tensors="pt",
    )  # fmt: skip
    _export_classifier(model[0].auto_model, dict(features), files.model)
    tmp = atomic_target(files.tokenizer)
    tokenizer.backend_tokenizer.save(str(tmp))
    publish(tmp, files.tokenizer)
    meta = {
        "max_length": max_length,
        "num_labels": int(model.num_labels),
        "activation": _qualified_name(model.activation_fn),
        "padding_side": str(getattr(tokenizer, "padding_side", "right")),
    }
    tmp = atomic_target(files.meta)
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    publish(tmp, files.meta)
    logits = model.predict(
        PROBE, batch_size=len(PROBE), activation_fn=torch.nn.Identity(), convert_to_numpy=True
    )
    tmp = atomic_target(files.reference).with_suffix(".npz")
    np.savez(
        tmp,
        queries=np.array(queries),
        documents=np.array(documents),
        logits=np.asarray(logits, dtype=np.float32).reshape(len(PROBE), -1),
    )
    publish(tmp, files.reference)
    return files


def main(argv: list[str] | None = None) -> int:
    return export_main(export, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
