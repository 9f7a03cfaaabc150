"""Text embedding with sentence-transformers: one forward pass for a whole Triton batch.

On CPU the encoder runs on ONNX Runtime (engine "auto" or "onnx"); tokenization, pooling
and normalization stay sentence-transformers' own modules, so outputs match the library.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.common import configure_threads, local_snapshot
from frontend.tasks.onnx_encoder import OnnxEncoder, export_encoder, export_path, shipped_onnx

logger = logging.getLogger(__name__)
PROBE = ["Homelab AI checks that its ONNX encoder matches torch.", "ok"]
MIN_PROBE_COSINE = 0.99999


class EmbeddingTask:
    def __init__(
        self,
        hf_model: str,
        threads: int = 1,
        device: str = "cpu",
        fp16: bool = False,
        engine: str = "auto",
    ):
        configure_threads(threads)
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        snapshot = local_snapshot(hf_model)
        self.model = SentenceTransformer(str(snapshot), device=device, local_files_only=True)
        if fp16 and device.startswith("cuda"):
            self.model.half()
        # renamed in sentence-transformers 6; the old name still works but warns
        get_dimension = getattr(self.model, "get_embedding_dimension", None)
        dimension = (get_dimension or self.model.get_sentence_embedding_dimension)()
        self.dimensions = int(dimension) if dimension else 0
        self.onnx: OnnxEncoder | None = None
        if engine == "onnx" or (engine == "auto" and device == "cpu"):
            self.onnx = self._onnx_encoder(snapshot, threads, required=engine == "onnx")
        self.engine = "onnx" if self.onnx is not None else "torch"
        if self.onnx is not None:
            # The torch encoder weights are never used again: free them.
            self.model[0].auto_model.to("meta")

    @property
    def precision(self) -> str:
        """The dtype the encoder computes in: float16 with fp16 on a GPU, else float32."""
        if self.onnx is not None:
            return "float32"
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def _onnx_encoder(self, snapshot: Path, threads: int, required: bool) -> OnnxEncoder | None:
        """The ONNX encoder if it reproduces torch on a probe; None (torch) otherwise."""
        try:
            path = shipped_onnx(snapshot) or export_path(snapshot)
            if not path.exists():
                features = self.model.preprocess(PROBE)
                export_encoder(self.model[0].auto_model, features, path)
            encoder = OnnxEncoder(path, threads)
            expected, got = self._embed_torch(PROBE), self._embed_onnx(encoder, PROBE)
        except Exception as exc:
            if required:
                raise
            logger.warning("ONNX engine unavailable (%s: %s); using torch", type(exc).__name__, exc)
            return None
        norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
        cosine = float(np.min(np.sum(expected * got, axis=1) / norms))
        if cosine < MIN_PROBE_COSINE:
            if required:
                raise RuntimeError(f"ONNX encoder differs from torch (cosine {cosine:.6f})")
            logger.warning("ONNX encoder differs from torch (cosine %.6f); using torch", cosine)
            return None
        return encoder

    def _embed_torch(self, texts: list[str]) -> np.ndarray:
        with self._torch.inference_mode():
            vectors = self.model.encode(
                texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_onnx(self, encoder: OnnxEncoder, texts: list[str]) -> np.ndarray:
        features: dict[str, Any] = self.model.preprocess(texts)
        features["token_embeddings"] = self._torch.from_numpy(encoder(features))
        with self._torch.inference_mode():
            for module in list(self.model)[1:]:  # pooling, dense, normalize, ...
                features = module(features)
        return np.ascontiguousarray(features["sentence_embedding"].numpy(), dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dimensions]; the caller groups every request of a batch here."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.onnx is not None:
            return self._embed_onnx(self.onnx, texts)
        return self._embed_torch(texts)
