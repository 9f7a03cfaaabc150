"""Per-row bookkeeping of one batched generate: stop strings, token limits, cancellation, deltas."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RowState:
    """What one request of the batch has produced so far."""

    limit: int  # its own max_new_tokens
    stops: tuple[str, ...] = ()
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    sent: str = ""  # the part of `text` already streamed
    done: str | None = None  # "stop", "length" or "cancelled" once finished
    quiet: bool = False  # its text is post-processed at the end (Florence-2 boxes): no deltas


def held_back(text: str, stops: Sequence[str]) -> str:
    """The part of the answer (`text` stripped, as the final answer is) safe to stream now: no
    unfinished UTF-8 character, no trailing whitespace, no tail that may grow into a stop string."""
    safe = text.strip()
    if safe.endswith("\ufffd"):  # a multi-byte character whose last bytes are still to come
        safe = safe.rstrip("\ufffd")
    for stop in stops:
        for size in range(min(len(stop) - 1, len(safe)), 0, -1):
            if safe.endswith(stop[:size]):
                safe = safe[:-size]
                break
    return safe


class RowTracker:
    """A transformers stopping criterion over the whole batch: it decodes each running row after
    every step, ends rows at their own limit, stop string or cancellation (generate then pads
    them while the others go on), and hands newly final text to `on_text(row, delta)`."""

    def __init__(
        self,
        rows: list[RowState],
        decode: Callable[[list[int]], str],
        eos_ids: set[int],
        on_text: Callable[[int, str], None] | None = None,
        cancelled: Callable[[int], bool] | None = None,
    ) -> None:
        self.rows = rows
        self.decode = decode
        self.eos_ids = eos_ids
        self.on_text = on_text
        self.cancelled = cancelled
        self.start: int | None = None  # where the generated tokens begin in input_ids
        self.first_step_at: float | None = None  # perf_counter when the prompt was read

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.start is None:  # first call: exactly one new token per row so far
            self.start = input_ids.shape[1] - 1
            self.first_step_at = time.perf_counter()
        latest = input_ids[:, -1].tolist()
        for index, row in enumerate(self.rows):
            if row.done is None:
                self._step(index, row, int(latest[index]))
        return torch.tensor(
            [row.done is not None for row in self.rows], dtype=torch.bool, device=input_ids.device
        )

    def _step(self, index: int, row: RowState, token: int) -> None:
        if token in self.eos_ids:
            row.done = "stop"
        else:
            row.tokens.append(token)
            row.text = self.decode(row.tokens)
            cut = min((row.text.find(s) for s in row.stops if s in row.text), default=-1)
            if cut >= 0:
                row.text, row.done = row.text[:cut], "stop"
            elif len(row.tokens) >= row.limit:
                row.done = "length"
            elif self.cancelled is not None and self.cancelled(index):
                row.done = "cancelled"
        if row.done is None and not row.quiet:
            self.emit(index, row, held_back(row.text, row.stops))

    def emit(self, index: int, row: RowState, safe: str) -> None:
        """Stream what `safe` adds to what was sent (nothing if it does not extend it)."""
        if safe.startswith(row.sent) and len(safe) > len(row.sent):
            delta, row.sent = safe[len(row.sent) :], safe
            if self.on_text is not None:
                self.on_text(index, delta)
