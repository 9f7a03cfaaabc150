"""Per-model health: restarts of dead or hung model processes, with backoff and a give-up.

Triton 2.51's Python backend never restarts a stub that died (killed, OOM, a crash in native
code): the model stays "ready" and every request fails with "Stub process ... is not healthy"
until it is unloaded and loaded again. The registry does that; this book keeps the score so a
model that keeps dying is not restarted forever.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

HealthState = Literal["ok", "restarting", "failed"]


@dataclass
class ModelHealth:
    state: HealthState = "ok"
    reason: str | None = None  # why it was last restarted, or why it failed
    restarts: int = 0  # since the service started
    recent: deque[float] = field(default_factory=deque)  # restart times inside the window

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "restarts": self.restarts}


class HealthBook:
    """Restart accounting: up to `max_restarts` in `window` seconds, each later one waiting
    longer (1, 2, 4 ... s, at most 30 s); past that the model is failed until an operator
    loads it again."""

    def __init__(
        self,
        max_restarts: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_restarts = max_restarts
        self.window = window_seconds
        self.clock = clock
        self._models: dict[str, ModelHealth] = {}

    def get(self, model_id: str) -> ModelHealth:
        return self._models.setdefault(model_id, ModelHealth())

    def known(self) -> dict[str, ModelHealth]:
        return dict(self._models)

    def begin_restart(self, model_id: str, reason: str) -> float | None:
        """Count a restart; the delay before reloading, or None when the model gives up."""
        health = self.get(model_id)
        now = self.clock()
        while health.recent and health.recent[0] < now - self.window:
            health.recent.popleft()
        health.restarts += 1
        health.reason = reason
        if len(health.recent) >= self.max_restarts:
            health.state = "failed"
            health.reason = (
                f"{reason}; restarted {len(health.recent)} times in the last "
                f"{self.window:g} s, so it is not restarted again until it is loaded by hand"
            )
            return None
        delay = 0.0 if not health.recent else min(2.0 ** (len(health.recent) - 1), 30.0)
        health.recent.append(now)
        health.state = "restarting"
        return delay

    def ok(self, model_id: str) -> None:
        self.get(model_id).state = "ok"

    def fail(self, model_id: str, reason: str) -> None:
        health = self.get(model_id)
        health.state = "failed"
        health.reason = reason

    def reset(self, model_id: str) -> None:
        """An operator loads the model again: it gets a fresh budget of restarts."""
        health = self.get(model_id)
        health.state = "ok"
        health.recent.clear()

    def failed_reason(self, model_id: str) -> str | None:
        health = self._models.get(model_id)
        return health.reason if health is not None and health.state == "failed" else None
