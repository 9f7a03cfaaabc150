"""sentence-transformers' encode without torch: tokenizers + ONNX Runtime + numpy.

A stub that imported sentence-transformers to run an ONNX encoder held ~510 MiB PSS (torch
and transformers, unused at serving time); this pipeline reads the model's module config
(modules.json, the pooling config, sentence_bert_config.json, prompts) and reproduces
Transformer -> Pooling -> Normalize with numpy. Anything else in modules.json (Dense layers,
custom modules) raises UnsupportedPipeline and the model keeps the torch path. The export and
the reference embeddings come from a one-off process (frontend.tasks.onnx_export); a loaded
pipeline is checked against that reference before it serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frontend.tasks.onnx_encoder import OnnxEncoder

TRANSFORMER = "Transformer"
POOLING = "Pooling"
NORMALIZE = "Normalize"
# legacy boolean keys of 1_Pooling/config.json -> the mode name sentence-transformers 6 uses
LEGACY_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_MODES = {"cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken"}


class UnsupportedPipeline(ValueError):
    """The model's modules need torch (Dense, custom code, ...): keep sentence-transformers."""


@dataclass(frozen=True)
class PipelineSpec:
    """What sentence-transformers would do for this snapshot, read from its config files."""

    pooling_modes: tuple[str, ...] = ("mean",)
    normalize: bool = False
    include_prompt: bool = True
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompt: str = ""  # the default prompt, prepended to every text
    padding_side: str = "right"


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data


def _module_kind(type_name: str) -> str:
    # "sentence_transformers.models.Pooling" and the 6.x paths alike end in the class name
    return type_name.rsplit(".", 1)[-1]


def read_spec(snapshot: Path) -> PipelineSpec:
    """The spec of a Transformer [+ Pooling] [+ Normalize] model; UnsupportedPipeline otherwise."""
    modules_file = snapshot / "modules.json"
    if not modules_file.is_file():
        raise UnsupportedPipeline("no modules.json: not a sentence-transformers model")
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [_module_kind(m.get("type", "")) for m in modules]
    if kinds not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
        raise UnsupportedPipeline(f"modules {kinds} need torch")
    if modules[0].get("path", "") not in ("", "."):
        raise UnsupportedPipeline("the transformer lives in a subfolder")
    pooling = _read_json(snapshot / modules[1].get("path", "") / "config.json")
    modes = pooling.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in LEGACY_MODES.items() if pooling.get(key)] or ["mean"]
        if pooling.get("pooling_mode_weightedmean_tokens"):
            modes.append("weightedmean")
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    if not set(modes) <= SUPPORTED_MODES:
        raise UnsupportedPipeline(f"pooling {modes} is not reproduced without torch")
    transformer = _read_json(snapshot / "sentence_bert_config.json")
    settings = _read_json(snapshot / "config_sentence_transformers.json")
    prompt_name = settings.get("default_prompt_name")
    prompt = str((settings.get("prompts") or {}).get(prompt_name, "")) if prompt_name else ""
    tokenizer_config = _read_json(snapshot / "tokenizer_config.json")
    return PipelineSpec(
        pooling_modes=modes,
        normalize=kinds[-1] == NORMALIZE,
        include_prompt=bool(pooling.get("include_prompt", True)),
        max_seq_length=transformer.get("max_seq_length"),
        do_lower_case=bool(transformer.get("do_lower_case", False)),
        prompt=prompt,
        padding_side=str(tokenizer_config.get("padding_side", "right")),
    )


def sequence_limit(snapshot: Path, spec: PipelineSpec) -> int:
    """Truncation length: max_seq_length capped by the tokenizer's and the model's own limits."""
    limits = [spec.max_seq_length]
    limits.append(_read_json(snapshot / "tokenizer_config.json").get("model_max_length"))
    limits.append(_read_json(snapshot / "config.json").get("max_position_embeddings"))
    usable = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1_000_000]
    return min(usable) if usable else 512


def enable_padding(tokenizer: Any, snapshot: Path, side: str) -> None:
    """Pad a `tokenizers.Tokenizer` as transformers would: the pad token the model's
    tokenizer_config.json names, else the one tokenizer.json carries, else [PAD] = 0."""
    pad_token = _read_json(snapshot / "tokenizer_config.json").get("pad_token")
    if isinstance(pad_token, dict):  # AddedToken serialized as a dict
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(
        direction=side,
        pad_id=pad_id if pad_id is not None else padding.get("pad_id", 0),
        pad_token=pad_token if pad_id is not None else padding.get("pad_token", "[PAD]"),
    )


def pool(token_embeddings: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """sentence-transformers' Pooling.forward in numpy; `mask` is the attention mask [B, T]."""
    rows = np.arange(token_embeddings.shape[0])
    weights = mask.astype(token_embeddings.dtype)
    outputs = []
    for mode in modes:
        if mode == "cls":  # first attended token (left padding included)
            outputs.append(token_embeddings[rows, mask.argmax(axis=1)])
        elif mode == "lasttoken":  # last attended token; all-zero mask -> zero vector
            last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
            outputs.append(token_embeddings[rows, last] * weights[rows, last][:, None])
        elif mode == "max":
            masked = np.where(weights[:, :, None] > 0, token_embeddings, -np.inf)
            outputs.append(masked.max(axis=1))
        else:  # mean, mean_sqrt_len_tokens
            # einsum: one pass, no [B, T, H] temporary (matters for 256-token batches of 32)
            total = np.einsum("bth,bt->bh", token_embeddings, weights)
            count = np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
            outputs.append(total / (count if mode == "mean" else np.sqrt(count)))
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)


def normalize_rows(vectors: np.ndarray, pooled: Sequence[bool] | None = None) -> np.ndarray:
    """sentence-transformers' Normalize module (torch's normalize: eps 1e-12) on every row
    whose `pooled` flag is not set: those rows stay the vector before it (TEI's
    `normalize: false`)."""
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if pooled is not None and any(pooled):
        norms[np.asarray(pooled, dtype=bool)] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class TorchFreeEmbedder:
    """Tokenize with `tokenizers`, encode with ONNX Runtime, pool and normalize with numpy."""

    def __init__(
        self, snapshot: Path, onnx_model: Path, tokenizer_file: Path, threads: int, device: str
    ) -> None:
        from tokenizers import Tokenizer

        self.spec = read_spec(snapshot)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        enable_padding(self.tokenizer, snapshot, self.spec.padding_side)
        self.tokenizer.enable_truncation(max_length=sequence_limit(snapshot, self.spec))
        self.encoder = OnnxEncoder(onnx_model, threads, device)
        self.prompt_length = 0
        if self.spec.prompt and not self.spec.include_prompt:
            # sentence-transformers: the prompt's token count less its closing special token
            self.prompt_length = len(self.tokenizer.encode(self.spec.prompt).ids) - 1

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[0]

    def encode(
        self, texts: list[str], pooled: Sequence[bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(float32 embeddings, int32 tokens each text fed the encoder, prompt included).
        Rows whose `pooled` flag is set skip the model's Normalize module."""
        spec = self.spec
        if spec.prompt:
            texts = [spec.prompt + text for text in texts]
        if spec.do_lower_case:
            texts = [text.lower() for text in texts]
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        features = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        token_embeddings = self.encoder(features)
        if self.prompt_length:
            mask = mask.copy()
            mask[:, : self.prompt_length] = 0  # right padding: the prompt leads every row
        vectors = pool(token_embeddings, mask, spec.pooling_modes)
        if spec.normalize:
            vectors = normalize_rows(vectors, pooled)
        tokens = np.array([sum(e.attention_mask) for e in encodings], dtype=np.int32)
        return np.ascontiguousarray(vectors, dtype=np.float32), tokens
