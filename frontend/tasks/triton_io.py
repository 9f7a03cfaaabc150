"""Triton requests read into task items, and task results written as tensors, for the
embedding, rerank and image-embedding entry points (stub-only: Triton's module is imported
when a stub calls). A ValueError or AttributeError here fails only its own request."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from frontend.tasks.common import Columns, _pb_utils, images_of, input_array

RERANK_OUTPUTS = ("LOGIT", "SCORE", "TOKENS", "TRUNCATED")
DEFAULT_MIN_SCORE = 0.7  # Immich's default face detection threshold


def _utf8_rows(request: Any, name: str) -> list[str]:
    try:
        return [item.decode("utf-8") for item in input_array(request, name).reshape(-1)]
    except (AttributeError, UnicodeDecodeError):  # absent, not BYTES, or not UTF-8
        raise ValueError(f"{name} must be a tensor of UTF-8 strings") from None


def embedding_items(request: Any) -> list[tuple[str, bool]]:
    """(text, pooled) per TEXT row: requests with and without NORMALIZE share one forward."""
    texts = _utf8_rows(request, "TEXT")
    flags = _pb_utils().get_input_tensor_by_name(request, "NORMALIZE")
    if flags is None:  # optional: the model's own output
        return [(text, False) for text in texts]
    normalize = flags.as_numpy().reshape(-1)
    if normalize.dtype != bool or len(normalize) != len(texts):
        raise ValueError("NORMALIZE must be a BOOL tensor with one value per TEXT row")
    return [(text, not bool(flag)) for text, flag in zip(texts, normalize, strict=True)]


def embedding_tensors(columns: Columns) -> list[Any]:
    vectors, tokens = columns.arrays
    tensor = _pb_utils().Tensor
    return [tensor("EMBEDDING", vectors), tensor("TOKENS", tokens.reshape(-1, 1))]


def rerank_pairs(request: Any) -> list[tuple[str, str]]:
    try:
        queries = _utf8_rows(request, "QUERY")
        documents = _utf8_rows(request, "DOCUMENT")
    except ValueError:
        raise ValueError("QUERY and DOCUMENT must be tensors of UTF-8 strings") from None
    if len(queries) != len(documents):
        raise ValueError("QUERY and DOCUMENT need one row per pair")
    return list(zip(queries, documents, strict=True))


def rerank_tensors(columns: Columns) -> list[Any]:
    tensor = _pb_utils().Tensor
    return [
        tensor(name, np.ascontiguousarray(array).reshape(-1, 1))
        for name, array in zip(RERANK_OUTPUTS, columns.arrays, strict=True)
    ]


def image_or_text_items(request: Any) -> list[Any]:
    """An image-embedding request's images (IMAGE) or texts (TEXT): one of the two."""
    get = _pb_utils().get_input_tensor_by_name
    image, text = get(request, "IMAGE"), get(request, "TEXT")
    if (image is None) == (text is None):
        raise ValueError("send IMAGE or TEXT (one of them)")
    if image is not None:
        return images_of(image.as_numpy())
    return _utf8_rows(request, "TEXT")


def image_embedding_key(request: Any, faces: bool) -> str | float:
    """What shares a forward: "image" or "text"; for a face model, the detection threshold."""
    image = _pb_utils().get_input_tensor_by_name(request, "IMAGE")
    kind = "image" if image is not None else "text"
    if not faces:
        return kind
    if kind == "text":
        raise ValueError("a face model takes IMAGE only")
    return min_score(request)


def min_score(request: Any) -> float:
    value = json.loads(request.parameters() or "{}").get("min_score", DEFAULT_MIN_SCORE)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError("parameter min_score must be a number") from None
    if not 0.0 <= score <= 1.0:
        raise ValueError("parameter min_score must be from 0 to 1")
    return score


def image_embedding_tensors(results: Any, faces: bool) -> list[Any]:
    """EMBEDDING rows, or for a face model one FACES JSON document per image."""
    tensor = _pb_utils().Tensor
    if not faces:
        return [tensor("EMBEDDING", np.ascontiguousarray(results, np.float32))]
    documents = [
        [json.dumps([{**face, "embedding": face["embedding"].tolist()} for face in found]).encode()]
        for found in results
    ]
    return [tensor("FACES", np.array(documents, dtype=np.object_))]
