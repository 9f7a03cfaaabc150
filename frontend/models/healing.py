"""Model processes that die, hang or wedge their load: found, killed and restarted.

Triton 2.51's Python backend keeps a model "ready" after its stub died (the OOM killer, a
crash in native code, SIGKILL) and fails every request with "Stub process ... is not
healthy"; a stopped or hung stub gets the same answer within ~1 s (measured). Only an unload
and a load bring it back. A load whose stubs were starved of CPU for ~30 s while they ran
`initialize` never finishes (measured: the model stays LOADING); killing the stubs turns it
UNAVAILABLE, and then it loads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from tritonclient.utils import InferenceServerException

from frontend.core.config import ModelEntry, Settings
from frontend.core.errors import APIError, ModelLoadFailed
from frontend.core.observability import Metrics
from frontend.models.health import HealthBook
from frontend.models.stubs import is_alive, stub_pids
from frontend.triton.gateway import TritonGateway

logger = logging.getLogger(__name__)


class Patient(Protocol):
    """What the doctor uses of the ModelRegistry that owns it (which imports this module)."""

    settings: Settings
    gateway: TritonGateway
    metrics: Metrics | None
    repository: Path

    def loaded_entries(self) -> list[ModelEntry]: ...
    def is_loaded(self, model_id: str) -> bool: ...
    async def ensure_loaded(self, entry: ModelEntry) -> None: ...
    def forget(self, model_id: str) -> None: ...


class ModelDoctor:
    """Restarts of one registry's models: single-flight per model, counted by a HealthBook
    (backoff, then "failed" until an operator loads the model again)."""

    def __init__(self, registry: Patient) -> None:
        self.registry = registry
        resources = registry.settings.resources
        self.health = HealthBook(
            resources.model_max_restarts, resources.model_restart_window_seconds
        )
        # Called when Triton's own state for a model is stuck after an abandoned load: the
        # embedded server restarts tritonserver (set by the app; external Tritons have none).
        self.on_stuck: Callable[[], Awaitable[None]] | None = None
        self._restarting: dict[str, asyncio.Future[None]] = {}
        self._generation: dict[str, int] = {}  # loads so far: a restart is for one generation
        self._stubs: dict[str, list[int]] = {}  # stub pids seen right after the last load
        # Stubs this doctor SIGKILLed: on a starved machine one can still be listed when the
        # reload that follows records its new stubs, and it must not count as one of those
        # (it dies a moment later, and the watcher would restart the healthy model again).
        self._killed: dict[str, set[int]] = {}
        self._suspects: set[str] = set()  # seen dead once by the watcher
        # Inference calls in flight per model (their tasks): a restart cuts them loose, since
        # Triton holds a call whose process died for ~30 s (its stub timeout) before failing.
        self._calls: dict[str, set[asyncio.Task[object]]] = {}
        self._cut: set[asyncio.Task[object]] = set()

    def track(self, model_id: str) -> asyncio.Task[object] | None:
        task = asyncio.current_task()
        if task is not None:
            self._calls.setdefault(model_id, set()).add(task)
        return task

    def untrack(self, model_id: str, task: asyncio.Task[object] | None) -> bool:
        """Stop tracking a call; whether a restart cut it."""
        if task is None:
            return False
        self._calls.get(model_id, set()).discard(task)
        if task in self._cut:
            self._cut.discard(task)
            return True
        return False

    def _cut_calls(self, model_id: str) -> None:
        for task in self._calls.pop(model_id, set()):
            self._cut.add(task)
            task.cancel(msg="the model process died; retried after its restart")

    def generation(self, model_id: str) -> int:
        return self._generation.get(model_id, 0)

    def loaded(self, model_id: str) -> None:
        """A load finished: a new generation, and the stub processes to watch."""
        self._generation[model_id] = self.generation(model_id) + 1
        self._stubs[model_id] = self._live_stubs(model_id)

    def _live_stubs(self, model_id: str) -> list[int]:
        """The model's stub pids, less those this doctor killed (forgotten once gone)."""
        pids = stub_pids(self.registry.repository, model_id)
        killed = self._killed.get(model_id)
        if not killed:
            return pids
        killed.intersection_update(pids)  # a killed pid no longer listed is gone for good
        if not killed:
            del self._killed[model_id]
        return [pid for pid in pids if pid not in killed]

    async def restart(self, entry: ModelEntry, reason: str, generation: int) -> None:
        """Restart a model whose process died or hangs: kill its stubs, unload, load again.

        Single-flight: every request that saw the same dead process waits for one restart; a
        request that saw an older generation (restarted already) only waits for the load."""
        attempt = self._restarting.get(entry.id)
        if attempt is None:
            failed = self.health.failed_reason(entry.id)
            if failed is not None:
                raise ModelLoadFailed(
                    f"model '{entry.id}' is marked failed ({failed[:300]})",
                    {"model_id": entry.id, "health": "failed"},
                )
            if self.generation(entry.id) != generation and self.registry.is_loaded(entry.id):
                return  # restarted since this request's call began
            attempt = asyncio.ensure_future(self._restart(entry, reason))
            self._restarting[entry.id] = attempt
            attempt.add_done_callback(lambda _: self._restarting.pop(entry.id, None))
        await asyncio.shield(attempt)

    def restart_soon(self, entry: ModelEntry, reason: str, generation: int) -> None:
        task = asyncio.ensure_future(self.restart(entry, reason, generation))
        task.add_done_callback(_log_restart_failure)

    def is_restarting(self, model_id: str) -> bool:
        return model_id in self._restarting

    async def _restart(self, entry: ModelEntry, reason: str) -> None:
        logger.warning("model %s: %s; restarting it", entry.id, reason)
        self._cut_calls(entry.id)
        delay = self.health.begin_restart(entry.id, reason)
        if self.registry.metrics is not None:
            self.registry.metrics.model_restarts.labels(entry.id).inc()
        await self._stop_processes(entry)
        if delay is None:
            logger.error("model %s: %s", entry.id, self.health.get(entry.id).reason)
            raise ModelLoadFailed(
                f"model '{entry.id}' keeps failing and was marked failed",
                {"model_id": entry.id, "health": "failed"},
            )
        await asyncio.sleep(delay)
        try:
            await self.registry.ensure_loaded(entry)
        except APIError as exc:
            self.health.fail(entry.id, f"{reason}; reloading failed: {exc.message}")
            raise
        self.health.ok(entry.id)
        logger.info("model %s restarted", entry.id)

    async def _stop_processes(self, entry: ModelEntry) -> None:
        """Kill the model's stubs (SIGKILL also ends a stopped or deadlocked one) and unload it
        from Triton, which keeps a model with dead stubs "ready" otherwise."""
        pids = self._kill_stubs(entry)
        with contextlib.suppress(APIError, InferenceServerException):
            await self.registry.gateway.unload(entry.id)
        deadline = time.monotonic() + 10.0
        while (
            pids and stub_pids(self.registry.repository, entry.id) and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)

    def _kill_stubs(self, entry: ModelEntry) -> list[int]:
        """SIGKILL the model's stub processes of our repository (when this host sees them)."""
        self.registry.forget(entry.id)
        pids = stub_pids(self.registry.repository, entry.id)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                self._killed.setdefault(entry.id, set()).add(pid)
        return pids

    async def abandon_load(self, entry: ModelEntry) -> None:
        """A load past triton.load_timeout_seconds: Triton 2.51 can wedge a Python-backend load
        for good (stubs starved of CPU while they initialize). Killing the stubs turns the
        model from LOADING to UNAVAILABLE (measured); if it stays LOADING, Triton itself is
        stuck and is restarted (embedded) or routed around (external)."""
        logger.error(
            "model %s: load abandoned after %g s", entry.id, self.registry.gateway.load_timeout
        )
        self._kill_stubs(entry)
        deadline = time.monotonic() + 10.0
        states: list[str] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(APIError):
                states = await self.registry.gateway.model_states(entry.id)
            if "LOADING" not in states:
                break
            await asyncio.sleep(0.5)
        if "LOADING" in states:
            logger.error("Triton still reports %s as loading: restarting it", entry.id)
            if self.on_stuck is not None:
                await self.on_stuck()
            else:
                for replica in self.registry.gateway.replicas:
                    replica.mark_down(f"model {entry.id} stuck loading")
            return
        with contextlib.suppress(APIError, InferenceServerException):
            await self.registry.gateway.unload(entry.id)

    def dead_models(self) -> list[ModelEntry]:
        """Loaded models whose stub processes (seen after their load) are gone: the OOM killer
        or a native crash. Cheap: looks only at the pids recorded at load."""
        dead = []
        for entry in self.registry.loaded_entries():
            pids = self._stubs.get(entry.id)
            if pids and not all(is_alive(pid) for pid in pids) and not self.is_restarting(entry.id):
                current = self._live_stubs(entry.id)
                if len(current) >= len(pids):  # restarted by another frontend: not ours to do
                    self._stubs[entry.id] = current
                    continue
                dead.append(entry)
        return dead

    async def heal_dead(self) -> None:
        """Restart the models whose processes died, once seen dead on two checks in a row with
        Triton still counting them ready. Another frontend on the same Triton that unloads or
        restarts the model passes through "not ready" or new processes within that time: this
        frontend then only forgets the model (or follows the new processes)."""
        suspects, self._suspects = self._suspects, set()
        for entry in self.dead_models():
            ready = await self.registry.gateway.is_model_ready(entry.id)
            if not ready:
                self.registry.forget(entry.id)
            elif entry.id not in suspects:
                self._suspects.add(entry.id)  # look again at the next check
            else:
                self.restart_soon(entry, "its model process exited", self.generation(entry.id))


def _log_restart_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        logger.warning("restart failed: %s", exc.message if isinstance(exc, APIError) else exc)
