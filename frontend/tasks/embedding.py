"""Text embedding: one forward pass for a whole Triton batch.

Engines, in the order "auto" tries them on a CPU:
  torch-free  tokenizers + ONNX Runtime + numpy (frontend.tasks.st_pipeline) for models whose
              modules are Transformer + Pooling [+ Normalize]: a stub of ~130 MiB PSS instead
              of ~510 MiB with torch imported, and no torch between the batch and the encoder.
  hybrid      ONNX Runtime encoder + sentence-transformers' own modules (Dense layers, ...).
  torch       SentenceTransformer.encode (GPUs, custom modules, or when ONNX fails its probe).
"onnx-int8" is the torch-free engine on a dynamically quantized encoder, refused unless it
keeps cosine >= 0.99 against fp32 sentence-transformers on the probe set.

Every engine computes the vectors before a final Normalize module and normalizes per row, so
rows asked for `pooled` (TEI's `normalize: false`) share the batch's one forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.common import configure_threads
from frontend.tasks.onnx_encoder import OnnxEncoder, export_encoder, export_path, shipped_onnx
from frontend.tasks.snapshot_task import SnapshotTask
from frontend.tasks.st_pipeline import (
    NORMALIZE,
    TorchFreeEmbedder,
    UnsupportedPipeline,
    normalize_rows,
)

logger = logging.getLogger(__name__)
PROBE = ["Homelab AI checks that its ONNX encoder matches torch.", "ok"]
MIN_PROBE_COSINE = 0.99999
MIN_INT8_COSINE = 0.99
ONNX_ENGINES = ("auto", "onnx", "onnx-int8")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / norms))


def torch_free_embedder(
    snapshot: Path, threads: int, device: str, int8: bool = False
) -> tuple[TorchFreeEmbedder, float]:
    """The torch-free pipeline and its probe cosine; RuntimeError if it misses the threshold."""
    from frontend.tasks.onnx_export import ensure_exported

    files = ensure_exported(snapshot, int8=int8)
    model = files.int8 if int8 else files.model
    embedder = TorchFreeEmbedder(snapshot, model, files.tokenizer, threads, device)
    with np.load(files.reference, allow_pickle=False) as reference:
        texts, expected = [str(t) for t in reference["texts"]], reference["embeddings"]
    cosine = min_cosine(embedder(texts), expected)
    threshold = MIN_INT8_COSINE if int8 else MIN_PROBE_COSINE
    if cosine < threshold:
        kind = "int8" if int8 else "torch-free"
        raise RuntimeError(
            f"{kind} embeddings differ from sentence-transformers (probe cosine {cosine:.6f} "
            f"< {threshold})"
        )
    return embedder, cosine


def _token_counts(mask: Any) -> np.ndarray:
    """int32 tokens per text from a (CPU) attention mask."""
    return np.asarray(mask.sum(dim=1), dtype=np.int32)


class EmbeddingTask(SnapshotTask):
    def load(self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str) -> None:
        self.dimensions: int = 0
        self.fast: TorchFreeEmbedder | None = None
        self.onnx: OnnxEncoder | None = None
        self.probe_cosine: float | None = None
        self.normalizes = False  # the model ends in Normalize (its vectors are unit length)
        # The CUDA provider needs onnxruntime-gpu: only an explicit "onnx" asks for it.
        if engine in ONNX_ENGINES and (device == "cpu" or engine == "onnx"):
            self._try_torch_free(snapshot, threads, device, engine)
        if self.fast is not None:
            self.engine = "onnx-int8" if engine == "onnx-int8" else "onnx"
            self.dimensions = int(self.fast(["ok"]).shape[1])
            self.normalizes = self.fast.spec.normalize
            return
        self._load_torch(snapshot, threads, device, fp16, engine)

    def _try_torch_free(self, snapshot: Path, threads: int, device: str, engine: str) -> None:
        try:
            self.fast, self.probe_cosine = torch_free_embedder(
                snapshot, threads, device, int8=engine == "onnx-int8"
            )
        except UnsupportedPipeline as exc:
            if engine == "onnx-int8":
                raise RuntimeError(f"engine onnx-int8 needs a torch-free pipeline: {exc}") from exc
            logger.info("torch-free pipeline unavailable (%s); loading sentence-transformers", exc)
        except Exception as exc:
            if engine != "auto":
                raise
            logger.warning("torch-free pipeline failed (%s: %s)", type(exc).__name__, exc)

    def _load_torch(
        self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str
    ) -> None:
        configure_threads(threads)
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self.model = SentenceTransformer(str(snapshot), device=device, local_files_only=True)
        if len(self.model) > 1 and type(self.model[-1]).__name__ == NORMALIZE:
            # Every path (forward, encode, the hybrid's module loop) then gives the pooled
            # vector; normalize_rows applies the module's arithmetic per row afterwards.
            del self.model[len(self.model) - 1]
            self.normalizes = True
        # One forward reproduces encode() unless encode changes the input first
        modules = {type(module).__name__ for module in self.model}
        self._direct = (
            self.model.default_prompt_name is None
            and getattr(self.model, "truncate_dim", None) is None
            and "Router" not in modules
        )
        if fp16 and device.startswith("cuda"):
            self.model.half()
        # renamed in sentence-transformers 6; the old name still works but warns
        get_dimension = getattr(self.model, "get_embedding_dimension", None)
        dimension = (get_dimension or self.model.get_sentence_embedding_dimension)()
        self.dimensions = int(dimension) if dimension else 0
        if engine == "onnx" or (engine == "auto" and device == "cpu"):
            self.onnx = self._onnx_encoder(snapshot, threads, required=engine == "onnx")
        self.engine = "onnx" if self.onnx is not None else "torch"
        if self.onnx is not None:
            # The torch encoder weights are never used again: free them.
            self.model[0].auto_model.to("meta")

    @property
    def precision(self) -> str:
        """The dtype the encoder computes in: float16 with fp16 on a GPU, else float32."""
        if self.fast is not None or self.onnx is not None:
            return "int8" if self.engine == "onnx-int8" else "float32"
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def _onnx_encoder(self, snapshot: Path, threads: int, required: bool) -> OnnxEncoder | None:
        """The ONNX encoder if it reproduces torch on a probe; None (torch) otherwise."""
        try:
            path = shipped_onnx(snapshot) or export_path(snapshot)
            if not path.exists():
                features = self._tokenize(PROBE)
                export_encoder(self.model[0].auto_model, features, path)
            encoder = OnnxEncoder(path, threads)
            expected, got = self._embed_torch(PROBE), self._embed_onnx(encoder, PROBE)
        except Exception as exc:
            if required:
                raise
            logger.warning("ONNX engine unavailable (%s: %s); using torch", type(exc).__name__, exc)
            return None
        cosine = min_cosine(expected, got)
        if cosine < MIN_PROBE_COSINE:
            if required:
                raise RuntimeError(f"ONNX encoder differs from torch (cosine {cosine:.6f})")
            logger.warning("ONNX encoder differs from torch (cosine %.6f); using torch", cosine)
            return None
        return encoder

    def _embed_torch(self, texts: list[str]) -> np.ndarray:
        return self._torch_counted(texts)[0]

    def _tokenize(self, texts: list[str]) -> dict[str, Any]:
        """The model's features for `texts` (sentence-transformers 6.2 renamed tokenize)."""
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        features: dict[str, Any] = preprocess(texts)
        return features

    def _torch_counted(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, tokens per text) from one tokenizer pass and one forward of the whole
        batch: what `encode` computes for one batch, without its per-call bookkeeping (length
        sorting, per-row lists; on a GPU that bookkeeping outweighs MiniLM's arithmetic).
        `encode` keeps the models whose input it changes: default prompts, truncate_dim."""
        if not self._direct:
            with self._torch.inference_mode():
                vectors = self.model.encode(
                    texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
                )
            mask = self._tokenize(texts)["attention_mask"]
            return np.ascontiguousarray(vectors, dtype=np.float32), _token_counts(mask)
        features = self._tokenize(texts)
        tokens = _token_counts(features["attention_mask"])
        device = self.model.device
        features = {
            k: v.to(device, non_blocking=True) if hasattr(v, "to") else v
            for k, v in features.items()
        }
        with self._torch.inference_mode():
            vectors = self.model.forward(features)["sentence_embedding"].float().cpu().numpy()
        return np.ascontiguousarray(vectors, dtype=np.float32), tokens

    def _embed_onnx(self, encoder: OnnxEncoder, texts: list[str]) -> np.ndarray:
        features = self._tokenize(texts)
        features["token_embeddings"] = self._torch.from_numpy(encoder(features))
        with self._torch.inference_mode():
            for module in list(self.model)[1:]:  # pooling, dense, normalize, ...
                features = module(features)
        return np.ascontiguousarray(features["sentence_embedding"].numpy(), dtype=np.float32)

    def embed_counted(
        self, texts: list[str], pooled: Sequence[bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, int32 tokens per text as the encoder saw them: the usage the OpenAI
        and Ollama APIs report). Rows whose `pooled` flag is set are the vectors before the
        model's final Normalize module (the model's output where it has none)."""
        if self.fast is not None and texts:
            return self.fast.encode(texts, pooled)
        if not texts:
            return self.embed(texts), np.zeros(0, dtype=np.int32)
        if self.onnx is None:
            vectors, tokens = self._torch_counted(texts)
        else:
            # hybrid: one more tokenizer pass (fast tokenizers: microseconds per text)
            tokens = _token_counts(self._tokenize(texts)["attention_mask"])
            vectors = self._embed_onnx(self.onnx, texts)
        return self._normalized(vectors, pooled), tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dimensions]; the caller groups every request of a batch here."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.fast is not None:
            return self.fast(texts)
        if self.onnx is not None:
            return self._normalized(self._embed_onnx(self.onnx, texts))
        return self._normalized(self._embed_torch(texts))

    def _normalized(self, vectors: np.ndarray, pooled: Sequence[bool] | None = None) -> np.ndarray:
        """The torch paths' pooled vectors through the Normalize module taken off the model."""
        return normalize_rows(vectors, pooled) if self.normalizes else vectors
