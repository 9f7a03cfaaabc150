"""Text embedding with sentence-transformers: one forward pass for a whole Triton batch."""

from __future__ import annotations

import numpy as np

from frontend.tasks.common import configure_threads, local_snapshot


class EmbeddingTask:
    def __init__(self, hf_model: str, threads: int = 1, device: str = "cpu", fp16: bool = False):
        configure_threads(threads)
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        path = local_snapshot(hf_model)
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        if fp16 and device.startswith("cuda"):
            self.model.half()
        dimension = self.model.get_sentence_embedding_dimension()
        self.dimensions = int(dimension) if dimension else 0

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dimensions]; the caller groups every request of a batch here."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._torch.inference_mode():
            vectors = self.model.encode(
                texts,
                batch_size=len(texts),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
