"""Cache keys: sha256 over the model's identity, its revision, the options and the input.

The model's identity is what changes its outputs: the Hugging Face id, the engine and its
precision, and the generation defaults of the config entry (not the config id, so two entries
for one model share their results). The revision is the snapshot the weights came from, so a
re-download with new files gives new keys."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from frontend.core.config import ModelEntry

KEY_VERSION = "v1"  # bump when what a cached value holds changes shape
# The entry's fields that change what the model returns for one input.
OUTPUT_FIELDS = {"hf_model", "engine", "fp16", "max_new_tokens", "num_beams"}
Buffer = bytes | memoryview


def model_tag(hf_model: str, revision: str) -> str:
    """One revision of one model: what the in-process store drops once it is replaced."""
    return f"{hf_model}@{revision}"


def key_prefix(
    kind: str, entry: ModelEntry, revision: str, options: Mapping[str, Any] | None
) -> bytes:
    """Everything but the input, once per request: what the model is and how it is asked."""
    header = [
        KEY_VERSION,
        kind,
        entry.model_dump(include=OUTPUT_FIELDS, mode="json"),
        revision,
        dict(options or {}),
    ]
    return orjson.dumps(header, option=orjson.OPT_SORT_KEYS) + b"\0"


def item_key(prefix: bytes, parts: Sequence[Buffer]) -> str:
    """The key of one input (a text, an image's shape and pixels): each part length-prefixed,
    so no two different inputs hash the same bytes."""
    digest = hashlib.sha256(prefix)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()
