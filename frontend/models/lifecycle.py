"""Model lifecycle policy: keep-alive expiry, idle unloading and LRU eviction under a budget."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time

from frontend.core.config import ModelEntry, Settings, Task
from frontend.core.errors import APIError, InvalidRequest, ResourceExhausted
from frontend.models import gpu
from frontend.models.cache import repo_dir
from frontend.models.registry import ModelRegistry
from frontend.tasks.common import is_builtin

logger = logging.getLogger(__name__)
# A stub process holds the Python runtime, torch and friends before any weights (measured
# ~430 MB); used to estimate a model never loaded before.
STUB_BASELINE_BYTES = 450 * 1024 * 1024
# A CUDA context and the framework's kernels, before weights: a guess for a model whose GPU
# footprint was never measured.
CUDA_CONTEXT_BYTES = 600 * 1024 * 1024


class Lifecycle:
    """The unload policy: keep-alive expiry (a reaper task), and LRU eviction under the memory
    budgets before a load."""

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self._reaper: asyncio.Task[None] | None = None
        self._unloading: dict[str, asyncio.Task[None]] = {}

    def keep_alive_seconds(self, entry: ModelEntry) -> float | None:
        """How long the model stays loaded when idle; None = forever (pinned).

        In order: pinned; the last request's `keep_alive` (capped); the operator's runtime
        setting (settings store); the model's config; the task's default."""
        if self.registry.catalog.pinned(entry):
            return None
        resources = self.settings.resources
        usage = self.registry.usage.get(entry.id)
        if usage is not None and usage.keep_alive is not None:
            requested = usage.keep_alive
            cap = resources.max_keep_alive_seconds
            return cap if requested < 0 else min(requested, cap)
        store = self.registry.store
        override = store.override(entry.id).keep_alive_seconds if store is not None else None
        if override is not None:
            return None if override < 0 else override
        if entry.keep_alive_seconds is not None:
            return entry.keep_alive_seconds
        if self.registry.catalog.task_of(entry) is Task.OCR:
            return resources.ocr_keep_alive_seconds
        return resources.keep_alive_seconds

    def expires_in(self, entry: ModelEntry, now: float | None = None) -> float | None:
        """Seconds until an idle unload (negative: due); None when pinned or busy."""
        keep = self.keep_alive_seconds(entry)
        usage = self.registry.usage.get(entry.id)
        if keep is None or usage is None or usage.in_flight:
            return None
        return usage.last_used + keep - (now if now is not None else time.monotonic())

    def unload_expired(self) -> list[str]:
        """Start unloading every model past its keep-alive; each unload runs on its own, so
        one slow process exit never delays another model's expiry."""
        now = time.monotonic()
        started = []
        for entry in self.registry.loaded_entries():
            remaining = self.expires_in(entry, now)
            if remaining is None or remaining > 0 or entry.id in self._unloading:
                continue
            task = asyncio.create_task(self._unload_idle(entry), name=f"unload-{entry.id}")
            self._unloading[entry.id] = task
            started.append(entry.id)
        return started

    async def _unload_idle(self, entry: ModelEntry) -> None:
        try:
            await self.registry.unload(entry)
        except APIError as exc:
            logger.warning("idle unload of %s failed: %s", entry.id, exc.message)
        finally:
            self._unloading.pop(entry.id, None)

    async def _reap(self, interval: float) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            try:
                self.unload_expired()
                if ticks % 4 == 0:  # every ~2 s: restart models whose process died
                    await self.registry.doctor.heal_dead()
            except Exception:  # the reaper must outlive any one failure
                logger.exception("idle unloading failed")

    def start(self, interval: float = 0.5) -> None:
        self._reaper = asyncio.create_task(self._reap(interval), name="model-reaper")

    async def stop(self) -> None:
        tasks = [t for t in (self._reaper, *self._unloading.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def budget_bytes(self) -> int | None:
        limit = self.settings.resources.max_host_memory_gb
        return int(limit * 1024**3) if limit is not None else None

    def gpu_budget_bytes(self) -> int:
        return int(self.settings.resources.max_gpu_memory_gb * 1024**3)

    def on_gpu(self, entry: ModelEntry) -> bool:
        """Whether Triton will place the model on a GPU of this host (KIND_GPU, or KIND_AUTO
        with a GPU present)."""
        if entry.device == "cpu":
            return False
        return entry.device == "gpu" or gpu.gpu_available()

    def _weights_bytes(self, entry: ModelEntry) -> int:
        if is_builtin(entry.hf_model):
            return 0
        blobs = repo_dir(self.registry.hub_dir, entry.hf_model) / "blobs"
        if not blobs.is_dir():
            return 0
        return sum(p.stat().st_size for p in blobs.iterdir() if p.is_file())

    def estimate_bytes(self, entry: ModelEntry) -> int:
        """The footprint measured at its last load, else a guess from the files on disk."""
        if entry.id in self.registry.footprints:
            return self.registry.footprints[entry.id]
        return entry.instances * (STUB_BASELINE_BYTES + self._weights_bytes(entry))

    def estimate_gpu_bytes(self, entry: ModelEntry) -> int:
        if entry.id in self.registry.gpu_footprints:
            return self.registry.gpu_footprints[entry.id]
        # 8/4-bit weights hold a half/quarter of a 16-bit checkpoint's bytes (VLMs ship bf16).
        shrink = {"8bit": 2, "4bit": 4}.get(entry.quantize, 2 if entry.fp16 or entry.bf16 else 1)
        weights = self._weights_bytes(entry) // shrink
        return entry.instances * (CUDA_CONTEXT_BYTES + weights)

    def _shortfall(self, entry: ModelEntry) -> tuple[str, int, int, int] | None:
        """(memory kind, need, used, budget) of the first budget `entry` would exceed."""
        loaded = self.registry.loaded_entries()
        budget = self.budget_bytes()
        if budget is not None:
            need = self.estimate_bytes(entry)
            used = sum(self.registry.footprint(e.id).host for e in loaded)
            if used + need > budget:
                return "host memory", need, used, budget
        if self.on_gpu(entry):
            budget = self.gpu_budget_bytes()
            need = self.estimate_gpu_bytes(entry)
            used = sum(self.registry.footprint(e.id).gpu for e in loaded)
            if used + need > budget:
                return "GPU memory", need, used, budget
        return None

    async def make_room(self, entry: ModelEntry) -> None:
        """Unload least-recently-used idle models until `entry` fits the memory budgets
        (resources.max_host_memory_gb; resources.max_gpu_memory_gb for a model on a GPU)."""
        while True:
            shortfall = self._shortfall(entry)
            if shortfall is None:
                return
            kind, need, used, budget = shortfall
            usage = self.registry.usage
            idle = [
                e
                for e in self.registry.loaded_entries()
                if not self.registry.catalog.pinned(e)
                and e.id != entry.id
                and not (e.id in usage and usage[e.id].in_flight)
                and (kind == "host memory" or self.on_gpu(e))
            ]
            if not idle:
                raise ResourceExhausted(
                    f"model '{entry.id}' needs about {need / 2**20:.0f} MiB of {kind}; "
                    f"{used / 2**20:.0f} of {budget / 2**20:.0f} MiB are held by models in use",
                    {"model_id": entry.id},
                )
            victim = min(idle, key=lambda e: usage[e.id].last_used if e.id in usage else 0.0)
            logger.info("evicting %s (least recently used) to load %s", victim.id, entry.id)
            await self.registry.unload(victim)


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_keep_alive(value: float | str | None) -> float | None:
    """Ollama-style keep_alive: seconds, or "30s", "5m", "1h"; 0 unloads, negative keeps."""
    if value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise InvalidRequest(
                "keep_alive must be seconds or a duration such as '30s', '5m' or '1h'",
                {"errors": [{"field": "keep_alive", "message": "not a duration"}]},
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    # A form field of 400 digits (or "1e999" seconds times 3600) is no duration either.
    if not math.isfinite(seconds):
        raise InvalidRequest(
            "keep_alive must be a finite number of seconds",
            {"errors": [{"field": "keep_alive", "message": "must be finite"}]},
        )
    return seconds
