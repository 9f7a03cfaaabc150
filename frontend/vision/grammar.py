"""Structured output: a logits processor that keeps generated text inside a JSON schema (or any
JSON object), one llguidance matcher per batch row; and the schema check the APIs run first."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from frontend.vision.schema_check import SchemaError, check_schema, grammar_for

__all__ = ["SchemaError", "check_schema", "grammar_for", "make_logits_processor"]

# Wrapping a tokenizer for llguidance walks its whole vocabulary (~1 s for 150k tokens): once.
_WRAPPED: weakref.WeakKeyDictionary[Any, llguidance.LLTokenizer] = weakref.WeakKeyDictionary()
_WRAP_LOCK = threading.Lock()


def _wrap(tokenizer: PreTrainedTokenizerBase) -> llguidance.LLTokenizer:
    refusal = "this model's tokenizer cannot constrain output to a schema"
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise SchemaError(f"{refusal} (not a fast tokenizer)")
    with _WRAP_LOCK:
        wrapped = _WRAPPED.get(tokenizer)
        if wrapped is None:
            try:
                wrapped = llguidance.hf.from_tokenizer(tokenizer)
            except ValueError:  # llguidance reads byte-level BPE and SentencePiece, not WordPiece
                raise SchemaError(f"{refusal} (WordPiece)") from None
            _WRAPPED[tokenizer] = wrapped
        return wrapped


class GrammarLogitsProcessor(LogitsProcessor):
    """Masks each row's logits to the tokens its grammar allows next (None: a free row).

    Rows are matched to grammars in order; when generate expands rows (beams, several
    sequences per prompt: repeat_interleave), each grammar covers its consecutive rows. A row's
    matcher follows that row's generated tokens, so beam reordering resets and replays it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, grammars: Sequence[str | None]) -> None:
        if not grammars:
            raise ValueError("no grammars")
        self._lltokenizer = _wrap(tokenizer)
        self._grammars = list(grammars)
        self._eos = tokenizer.eos_token_id
        self._matchers: list[llguidance.LLMatcher | None] = []
        self._consumed: list[list[int]] = []
        self._start = 0

    def _begin(self, rows: int, prompt_length: int) -> None:
        if rows % len(self._grammars):
            raise ValueError(f"{rows} rows for {len(self._grammars)} grammars")
        per = rows // len(self._grammars)
        self._matchers = [
            None if grammar is None else llguidance.LLMatcher(self._lltokenizer, grammar)
            for grammar in self._grammars
            for _ in range(per)
        ]
        self._consumed = [[] for _ in range(rows)]
        self._start = prompt_length

    def _follow(self, row: int, matcher: llguidance.LLMatcher, tokens: list[int]) -> None:
        done = self._consumed[row]
        if tokens[: len(done)] != done:  # another beam took this row over: replay its tokens
            matcher.reset()
            done.clear()
        for token in tokens[len(done) :]:
            if not matcher.is_stopped() and not matcher.is_error():
                matcher.consume_token(token)
            done.append(token)  # padding after the row's end is kept but not fed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        rows, vocab = scores.shape
        if not self._matchers:
            self._begin(rows, input_ids.shape[1])
        generated = input_ids[:, self._start :].tolist()
        own = (self._lltokenizer.vocab_size + 31) // 32  # the matcher fills exactly these words
        words = max(own, (vocab + 31) // 32)
        bitmask = np.full((rows, words), 0xFFFFFFFF, dtype=np.uint32)  # 1 bit per token
        for row, matcher in enumerate(self._matchers):
            if matcher is None:
                continue
            self._follow(row, matcher, generated[row])
            bitmask[row] = 0  # a model's logits past the tokenizer's vocabulary stay blocked
            if matcher.is_error() or matcher.is_stopped():
                if self._eos is not None:  # only the end remains
                    bitmask[row, self._eos // 32] = 1 << (self._eos % 32)
                continue
            matcher.unsafe_compute_mask_ptr(bitmask[row].ctypes.data, own * 4)
        allowed = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, :vocab]
        blocked = torch.from_numpy(allowed == 0).to(scores.device)
        masked = scores.masked_fill(blocked, float("-inf"))
        # The processors before this one (a checkpoint's suppress_tokens, top-k) may have ruled
        # out every token the grammar allows: the grammar wins, its tokens scored alike.
        dead = ~torch.isfinite(masked).any(dim=1)
        if bool(dead.any()):
            masked[dead] = torch.zeros_like(masked[dead]).masked_fill(blocked[dead], float("-inf"))
        return masked


def make_logits_processor(
    tokenizer: PreTrainedTokenizerBase, json_schema: dict[str, Any] | None, json_mode: bool
) -> LogitsProcessor:
    """The processor for a batch whose rows share one constraint; SchemaError for a bad one."""
    return make_batch_logits_processor(tokenizer, [(json_schema, json_mode)])


def make_batch_logits_processor(
    tokenizer: PreTrainedTokenizerBase, constraints: Sequence[tuple[dict[str, Any] | None, bool]]
) -> LogitsProcessor:
    """One processor for a batch whose rows have constraints of their own, in row order
    ((None, False): a free row). A Triton batch mixes requests: this keeps one generate call."""
    return GrammarLogitsProcessor(
        tokenizer, [grammar_for(schema, mode) for schema, mode in constraints]
    )
