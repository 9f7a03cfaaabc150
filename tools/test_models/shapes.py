"""What every tiny test model shares: its width, its initialisation and its vocabulary."""

from __future__ import annotations

import string
from typing import Any

SIZE = 32  # image side, hidden width
# Weights drawn wider than the usual 0.02: with tiny std every image yields the same caption,
# and tests could not tell whether a batch kept its images apart.
INIT_STD = 0.2
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CAPTION_WORDS = [
    *("a", "an", "the", "of", "on", "in", "with", "and", "is", "are", "there", "two"),
    *("cat", "dog", "man", "woman", "child", "car", "bus", "tree", "sky", "street"),
    *("table", "room", "picture", "photo", "red", "blue", "green", "white", "black"),
    *("sitting", "standing", "holding", "next", "to", "front", "large", "small"),
]


def vision_layers() -> dict[str, Any]:
    return {
        "hidden_size": SIZE,
        "intermediate_size": 2 * SIZE,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": SIZE,
        "patch_size": 8,
        "initializer_range": INIT_STD,
    }


def bert_words() -> list[str]:
    """The tiny BERTs' vocabulary: specials, the caption words, letters and digits."""
    return [*SPECIALS, *dict.fromkeys(CAPTION_WORDS), *string.ascii_lowercase, *string.digits]


def tiny_bert_config(vocab_size: int) -> Any:
    """The shape every tiny test BERT shares (reranker, CLS-pooled embedder)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=SIZE,
        intermediate_size=2 * SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        initializer_range=INIT_STD,
    )
