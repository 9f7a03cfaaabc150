"""Tensors to and from Triton: strings as BYTES, embeddings as FP32."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient


def texts_input(texts: list[str], name: str = "TEXT") -> grpcclient.InferInput:
    """A [n, 1] BYTES tensor of UTF-8 strings (one row per batch item)."""
    array = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(len(texts), 1)
    tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def fp32_matrix(result: grpcclient.InferResult, name: str, rows: int) -> np.ndarray:
    """An output as a float32 [rows, d] matrix, checked against the number of inputs sent."""
    array = result.as_numpy(name)
    if array is None:
        raise ValueError(f"Triton response has no output {name}")
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"output {name} has shape {array.shape}, expected ({rows}, d)")
    return array
