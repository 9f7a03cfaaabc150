"""Tensors to and from Triton: strings as BYTES, embeddings as FP32, per-row values."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient


def texts_input(texts: list[str], name: str = "TEXT") -> grpcclient.InferInput:
    """A [n, 1] BYTES tensor of UTF-8 strings (one row per batch item)."""
    array = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(len(texts), 1)
    tensor = grpcclient.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def bools_input(values: list[bool], name: str) -> grpcclient.InferInput:
    """A [n, 1] BOOL tensor (one flag per batch row)."""
    array = np.array(values, dtype=np.bool_).reshape(len(values), 1)
    tensor = grpcclient.InferInput(name, list(array.shape), "BOOL")
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


def column(result: grpcclient.InferResult, name: str, rows: int) -> np.ndarray:
    """A one-value-per-row output ([rows, 1]) as a flat array of `rows` values."""
    array = result.as_numpy(name)
    if array is None:
        raise ValueError(f"Triton response has no output {name}")
    array = np.asarray(array).reshape(-1)
    if array.shape[0] != rows:
        raise ValueError(f"output {name} has {array.shape[0]} values, expected {rows}")
    return array


def int_column(result: grpcclient.InferResult, name: str, rows: int) -> np.ndarray:
    return column(result, name, rows).astype(np.int64)


def image_input(image: np.ndarray, name: str = "IMAGE") -> grpcclient.InferInput:
    """One decoded RGB image as a [1, H, W, 3] UINT8 tensor."""
    array = np.ascontiguousarray(image, dtype=np.uint8)[np.newaxis]
    tensor = grpcclient.InferInput(name, list(array.shape), "UINT8")
    tensor.set_data_from_numpy(array)
    return tensor


def strings(result: grpcclient.InferResult, name: str) -> list[str]:
    """A BYTES output as UTF-8 strings, one per batch row."""
    array = result.as_numpy(name)
    if array is None:
        raise ValueError(f"Triton response has no output {name}")
    return [item.decode("utf-8") for item in array.reshape(-1)]
