"""Cross-encoder reranking: one forward pass over every (query, document) pair of a batch.

Scores are sentence-transformers' CrossEncoder.predict: the classifier's logit, and the
model's activation of it (sigmoid unless the checkpoint names another). Engines, as for
embeddings: on a CPU "auto" runs torch-free (tokenizers + ONNX Runtime + numpy, from the
child-process export of frontend.tasks.rerank_export) once the export reproduces
CrossEncoder's logits on a probe; otherwise (GPU, unusual activations, a failed probe) the
CrossEncoder itself, in half precision with fp16 on a GPU.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from frontend.tasks.common import configure_threads
from frontend.tasks.onnx_encoder import OnnxEncoder
from frontend.tasks.snapshot_task import SnapshotTask
from frontend.tasks.st_pipeline import enable_padding

logger = logging.getLogger(__name__)
MAX_PROBE_ERROR = 1e-4  # absolute logit difference allowed against CrossEncoder
ONNX_ENGINES = ("auto", "onnx")
# CrossEncoder activations the torch-free engine reproduces (qualified torch class names)
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "torch.nn.modules.activation.Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.Tanh": np.tanh,
}


class Scores(NamedTuple):
    """Per pair: the logit, the activated score, tokens fed to the model, whether truncated."""

    logits: np.ndarray
    scores: np.ndarray
    tokens: np.ndarray
    truncated: np.ndarray


class TorchFreeReranker:
    """Tokenize pairs with `tokenizers`, classify with ONNX Runtime, activate with numpy."""

    def __init__(self, snapshot: Path, threads: int, device: str) -> None:
        from tokenizers import Tokenizer

        from frontend.tasks.rerank_export import ensure_rerank_exported

        files = ensure_rerank_exported(snapshot)
        meta = json.loads(files.meta.read_text(encoding="utf-8"))
        if meta["num_labels"] != 1:
            raise ValueError(f"a reranker needs one label, this model has {meta['num_labels']}")
        if meta["activation"] not in ACTIVATIONS:
            raise ValueError(f"activation {meta['activation']} needs torch")
        self.activation = ACTIVATIONS[meta["activation"]]
        self.max_length = int(meta["max_length"])
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        # transformers' truncation=True for pairs: take tokens from the longer side first
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        enable_padding(self.tokenizer, snapshot, meta["padding_side"])
        self.network = OnnxEncoder(files.model, threads, device)
        with np.load(files.reference, allow_pickle=False) as reference:
            pairs = list(zip(reference["queries"], reference["documents"], strict=True))
            expected = reference["logits"].reshape(-1)
        got = self(([str(q), str(d)] for q, d in pairs)).logits
        self.probe_error = float(np.max(np.abs(got - expected)))
        if self.probe_error > MAX_PROBE_ERROR:
            raise RuntimeError(f"ONNX logits differ from CrossEncoder by {self.probe_error:.2e}")

    def __call__(self, pairs: Any) -> Scores:
        encodings = self.tokenizer.encode_batch([tuple(pair) for pair in pairs])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        features = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        logits = np.asarray(self.network(features), dtype=np.float32).reshape(len(encodings))
        scores = np.asarray(self.activation(logits), dtype=np.float32)
        tokens = mask.sum(axis=1).astype(np.int32)
        truncated = np.array([bool(e.overflowing) for e in encodings], dtype=np.bool_)
        return Scores(logits, scores, tokens, truncated)


class RerankTask(SnapshotTask):
    def load(self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str) -> None:
        self.fast: TorchFreeReranker | None = None
        if engine in ONNX_ENGINES and (device == "cpu" or engine == "onnx"):
            try:
                self.fast = TorchFreeReranker(snapshot, threads, device)
            except Exception as exc:
                if engine != "auto":
                    raise
                logger.warning("torch-free reranker failed (%s: %s)", type(exc).__name__, exc)
        if self.fast is not None:
            self.engine, self.max_length = "onnx", self.fast.max_length
            return
        self._load_torch(snapshot, threads, device, fp16)

    def _load_torch(self, snapshot: Path, threads: int, device: str, fp16: bool) -> None:
        configure_threads(threads)
        import torch
        from sentence_transformers import CrossEncoder

        self._torch = torch
        self.model = CrossEncoder(str(snapshot), device=device, local_files_only=True)
        if self.model.num_labels != 1:
            raise ValueError(f"a reranker needs one label, this model has {self.model.num_labels}")
        if fp16 and device.startswith("cuda"):
            self.model.half()
        self.engine, self.max_length = "torch", int(self.model.max_seq_length)

    @property
    def precision(self) -> str:
        if self.fast is not None:
            return "float32"
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def score(self, pairs: list[tuple[str, str]]) -> Scores:
        """Every pair of a Triton batch in one forward pass."""
        if not pairs:
            empty = np.zeros(0, dtype=np.float32)
            return Scores(empty, empty, np.zeros(0, np.int32), np.zeros(0, np.bool_))
        if self.fast is not None:
            return self.fast(pairs)
        torch = self._torch
        logits = self.model.predict(
            pairs,
            batch_size=len(pairs),
            activation_fn=torch.nn.Identity(),
            convert_to_tensor=True,
            show_progress_bar=False,
        )
        with torch.inference_mode():
            scores = self.model.activation_fn(logits.float())
        lengths = [
            len(ids)
            for ids in self.model.tokenizer([q for q, _ in pairs], [d for _, d in pairs])[
                "input_ids"
            ]
        ]
        tokens = np.minimum(np.array(lengths, dtype=np.int32), self.max_length)
        return Scores(
            logits.float().cpu().numpy().reshape(-1),
            scores.cpu().numpy().reshape(-1).astype(np.float32),
            tokens,
            np.array(lengths, dtype=np.int32) > self.max_length,
        )
