"""Which configured model serves a request, and loading it into Triton on first use."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from tritonclient.grpc import InferInput, InferResult
from tritonclient.utils import InferenceServerException

from frontend.core.config import ModelEntry, Settings
from frontend.core.errors import (
    InferenceTimedOut,
    ModelLoadFailed,
    ResourceExhausted,
)
from frontend.core.observability import Metrics, note_model
from frontend.models import gpu
from frontend.models.cache import is_downloaded, model_revision
from frontend.models.catalog import ModelCatalog
from frontend.models.healing import ModelDoctor
from frontend.models.store import SettingsStore
from frontend.models.stubs import resident_bytes, stub_pids
from frontend.tasks.common import is_builtin
from frontend.triton.cohorts import Cohorts
from frontend.triton.gateway import (
    InferenceTimeout,
    ModelNotLoaded,
    ModelUnhealthy,
    TritonGateway,
    unavailable,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
UNLOAD_WAIT_SECONDS = 30.0


class Footprint(NamedTuple):
    host: int  # PSS bytes of the model's stub processes
    gpu: int  # GPU bytes they hold (NVML)


NONE = Footprint(0, 0)


@dataclass
class ModelUsage:
    """What the lifecycle needs to know about one model."""

    last_used: float = 0.0
    in_flight: int = 0
    requests: int = 0
    keep_alive: float | None = None  # sticky override from a request's `keep_alive`
    loaded_at: float | None = None


class ModelRegistry:
    """The configured models and their Triton state: which entry serves a request, single-flight
    loads, inference with its slot, timing and healing, and unloads that wait for the memory."""

    def __init__(
        self,
        settings: Settings,
        gateway: TritonGateway,
        store: SettingsStore | None = None,
        metrics: Metrics | None = None,
        make_room: Callable[[ModelEntry], Awaitable[None]] | None = None,
        catalog: ModelCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.store = store  # runtime overrides (keep-alive, pinning)
        self.metrics = metrics
        # resources.max_concurrent_requests: inference requests in flight at once
        self._slots = asyncio.Semaphore(settings.resources.max_concurrent_requests)
        self.hub_dir = settings.models_dir / "hub"
        self.repository = settings.triton_repository_dir
        self._loaded: set[str] = set()
        self._loading: dict[str, asyncio.Future[None]] = {}
        self.load_count: dict[str, int] = {}
        self.last_load_seconds: dict[str, float] = {}
        self.revisions: dict[str, str] = {}  # the snapshot each model was last loaded from
        self.usage: dict[str, ModelUsage] = {}
        self.footprints: dict[str, int] = {}  # bytes measured after each model's last load
        self.gpu_footprints: dict[str, int] = {}  # GPU bytes likewise (NVML), when on a GPU
        # Which entry a name means; it owns the models added at runtime.
        self.catalog = catalog if catalog is not None else ModelCatalog(settings, store)
        # Called before a load with the entry to make room for (LRU eviction: the lifecycle).
        self.make_room = make_room
        self.doctor = ModelDoctor(self)  # restarts models whose processes die or hang
        self.health = self.doctor.health
        # Waits (bounded) for the embedded tritonserver to be back when it is restarting; True
        # once it is up. None for external servers, whose restarts we cannot see.
        self.server_back: Callable[[float], Awaitable[bool]] | None = None
        # Generating models' concurrent requests leave in cohorts (frontend.triton.cohorts)
        self.cohorts = Cohorts()

    async def _gateway_load(self, entry: ModelEntry) -> None:
        """The load, tried once more when the embedded tritonserver was restarting (it crashed,
        or a stuck load restarted it): the request waits for it rather than getting a 503."""
        try:
            await self.gateway.load(entry.id)
        except InferenceServerException as exc:
            if not str(exc.status() or "").endswith("UNAVAILABLE") or not await self._back():
                raise
            logger.warning("tritonserver is back; loading model %s again", entry.id)
            await self.gateway.load(entry.id)

    async def _back(self) -> bool:
        if self.server_back is None:
            return False
        deadline = time.monotonic() + self.settings.triton.startup_timeout_seconds
        while (left := deadline - time.monotonic()) > 0 and await self.server_back(left):
            if await self.gateway.is_ready():
                return True
            await asyncio.sleep(0.2)
        return False

    def loaded_entries(self) -> list[ModelEntry]:
        found = (self.catalog.find(model_id) for model_id in sorted(self._loaded))
        return [f.entry for f in found if f is not None]

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    def revision(self, entry: ModelEntry) -> str | None:
        """The snapshot the model's outputs come from: the one it was loaded from while it is
        loaded (a newer download counts from its next load), else the one on disk."""
        if entry.id in self._loaded and entry.id in self.revisions:
            return self.revisions[entry.id]
        return self.disk_revision(entry)

    def disk_revision(self, entry: ModelEntry) -> str | None:
        if is_builtin(entry.hf_model):
            return "builtin"  # the weights ship inside a pinned Python package
        return model_revision(self.hub_dir, entry.hf_model)

    def is_loading(self, model_id: str) -> bool:
        return model_id in self._loading

    def footprint(self, model_id: str) -> Footprint:
        """What its stub processes hold now, host PSS and GPU bytes, from one look at /proc
        ((0, 0) when they are not visible here: Triton on another host)."""
        pids = stub_pids(self.repository, model_id)
        return Footprint(resident_bytes(pids), gpu.process_gpu_memory(pids)) if pids else NONE

    async def ensure_loaded(self, entry: ModelEntry) -> None:
        """Load once: concurrent first requests share one load attempt and its outcome."""
        if entry.id in self._loaded:
            return
        failed = self.health.failed_reason(entry.id)
        if failed is not None:
            raise ModelLoadFailed(
                f"model '{entry.id}' is marked failed ({failed[:300]}); load it with "
                f"POST /api/models/{entry.id}/load",
                {"model_id": entry.id, "health": "failed"},
            )
        attempt = self._loading.get(entry.id)
        if attempt is None:
            attempt = asyncio.ensure_future(self._load(entry))
            self._loading[entry.id] = attempt
            attempt.add_done_callback(functools.partial(self._finish_load, entry.id))
        # shield: a client that disconnects must not cancel the load the others wait for
        await asyncio.shield(attempt)

    def _finish_load(self, model_id: str, attempt: asyncio.Future[None]) -> None:
        self._loading.pop(model_id, None)
        if not attempt.cancelled() and attempt.exception() is None:
            self._loaded.add(model_id)

    async def _load(self, entry: ModelEntry) -> None:
        if not is_builtin(entry.hf_model) and not is_downloaded(self.hub_dir, entry.hf_model):
            raise ModelLoadFailed(
                f"model '{entry.id}' ({entry.hf_model}) is not downloaded; import it with "
                f"'homelab-ai models import <folder> --id {entry.hf_model}' or download it",
                {"model_id": entry.id, "hf_model": entry.hf_model},
            )
        if self.make_room is not None:
            await self.make_room(entry)
        started = time.monotonic()
        revision = self.disk_revision(entry)
        logger.info("loading model %s (%s)", entry.id, entry.hf_model)
        try:
            await self._gateway_load(entry)
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            logger.error("loading %s failed: %s", entry.id, str(exc.message())[:2000])
            if status.endswith("DEADLINE_EXCEEDED") and await self.gateway.is_ready():
                await self.doctor.abandon_load(entry)
                raise ModelLoadFailed(
                    f"model '{entry.id}' did not finish loading within "
                    f"{self.gateway.load_timeout:g} s (triton.load_timeout_seconds); the load "
                    "was abandoned, retry shortly",
                    {"model_id": entry.id, "hf_model": entry.hf_model},
                ) from None
            if (
                status.endswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))
                and not await self.gateway.is_ready()
            ):
                raise unavailable() from None
            raise ModelLoadFailed(
                f"model '{entry.id}' failed to load; the server log has the cause",
                {"model_id": entry.id, "hf_model": entry.hf_model},
            ) from None
        elapsed = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.load_duration.labels(entry.id).observe(elapsed)
        self.load_count[entry.id] = self.load_count.get(entry.id, 0) + 1
        self.last_load_seconds[entry.id] = elapsed
        if revision is not None:
            self.revisions[entry.id] = revision
        self.doctor.loaded(entry.id)
        usage = self.usage.setdefault(entry.id, ModelUsage())
        usage.loaded_at = usage.last_used = time.monotonic()
        footprint = self.footprint(entry.id)
        if footprint.host:
            self.footprints[entry.id] = footprint.host
        if footprint.gpu:
            self.gpu_footprints[entry.id] = footprint.gpu
        logger.info("loaded model %s in %.2f s", entry.id, elapsed)

    def forget(self, model_id: str) -> None:
        self._loaded.discard(model_id)

    async def infer(
        self,
        entry: ModelEntry,
        inputs: list[InferInput],
        outputs: list[str],
        parameters: dict[str, int | str] | None = None,
        keep_alive: float | None = None,
    ) -> InferResult:
        """One Triton inference for `entry`, with everything `run` adds around it."""

        async def call() -> InferResult:
            return await self.gateway.infer(entry.id, inputs, outputs, parameters)

        return await self.run(entry, call, keep_alive)

    async def run(
        self, entry: ModelEntry, call: Callable[[], Awaitable[T]], keep_alive: float | None = None
    ) -> T:
        """Run an inference call, loading the model first; reload once if Triton lost it.

        `keep_alive` (seconds; 0 = unload after this request, negative = keep loaded) sticks
        to the model for later requests, as in Ollama.
        """
        note_model(entry.id)
        await self._take_slot()
        usage = self.usage.setdefault(entry.id, ModelUsage())
        usage.in_flight += 1
        try:
            return await self._run(entry, self._timed(entry.id, call))
        finally:
            self._slots.release()
            usage.in_flight -= 1
            usage.requests += 1
            usage.last_used = time.monotonic()
            if keep_alive is not None:
                usage.keep_alive = keep_alive
            if (
                usage.keep_alive == 0
                and usage.in_flight == 0
                and entry.id in self._loaded
                and not self.catalog.pinned(entry)
            ):
                task = asyncio.ensure_future(self.unload(entry))
                task.add_done_callback(_log_unload_failure)

    async def _take_slot(self) -> None:
        """A slot among resources.max_concurrent_requests, waiting at most queue_timeout."""
        if not self._slots.locked():  # the usual case: no wait, and no timer task to pay for
            await self._slots.acquire()
            return
        resources = self.settings.resources
        try:
            await asyncio.wait_for(self._slots.acquire(), resources.queue_timeout_seconds)
        except TimeoutError:
            raise ResourceExhausted(
                f"the server is busy ({resources.max_concurrent_requests} inference requests "
                f"in flight for {resources.queue_timeout_seconds:g} s); retry shortly",
            ) from None

    def _timed(self, model_id: str, call: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        if self.metrics is None:
            return call
        histogram = self.metrics.inference_duration.labels(model_id)

        async def timed() -> T:
            started = time.perf_counter()
            try:
                return await call()
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed

    async def _run(self, entry: ModelEntry, call: Callable[[], Awaitable[T]]) -> T:
        await self.ensure_loaded(entry)
        generation = self.doctor.generation(entry.id)
        try:
            return await self._call(entry, call)
        except ModelUnhealthy as exc:
            # Its process died or hangs: restart the model (once for all the requests that saw
            # it) and retry this one; inference is idempotent.
            await self.doctor.restart(entry, f"model process unhealthy: {exc}", generation)
            try:
                return await call()
            except (ModelUnhealthy, ModelNotLoaded):
                raise ModelLoadFailed(
                    f"model '{entry.id}' failed again right after a restart",
                    {"model_id": entry.id},
                ) from None
        except InferenceTimeout:
            self.doctor.restart_soon(entry, "an inference call timed out", generation)
            raise InferenceTimedOut(
                f"model '{entry.id}' did not answer within "
                f"{self.gateway.infer_timeout:g} s; it is being restarted",
                {"model_id": entry.id},
            ) from None
        except ModelNotLoaded:
            # Unloaded behind our back (by an admin, or Triton restarted): load and retry once.
            self.forget(entry.id)
            await self.ensure_loaded(entry)
            try:
                return await call()
            except ModelNotLoaded:
                self.forget(entry.id)
                raise ModelLoadFailed(
                    f"model '{entry.id}' is not available after loading"
                ) from None

    async def _call(self, entry: ModelEntry, call: Callable[[], Awaitable[T]]) -> T:
        """One inference call; a call cut loose by a restart of its model is ModelUnhealthy."""
        task = self.doctor.track(entry.id)
        cut = False
        try:
            return await call()
        except asyncio.CancelledError:
            cut = self.doctor.untrack(entry.id, task)
            if not cut or task is None:
                raise  # the client went away, or the service stops
            task.uncancel()
            raise ModelUnhealthy("its model process died during the call") from None
        finally:
            if not cut:
                self.doctor.untrack(entry.id, task)

    async def unload(self, entry: ModelEntry) -> None:
        """Unload and return only once the model's stub processes are gone (memory freed)."""
        attempt = self._loading.get(entry.id)
        if attempt is not None:  # let a load in progress finish first
            await asyncio.gather(attempt, return_exceptions=True)
        self._loaded.discard(entry.id)
        visible = bool(stub_pids(self.repository, entry.id))
        await self.gateway.unload(entry.id)
        deadline = time.monotonic() + UNLOAD_WAIT_SECONDS
        while time.monotonic() < deadline:
            if visible:
                if not stub_pids(self.repository, entry.id):
                    break
            elif not await self.gateway.is_model_ready(entry.id):
                break  # Triton elsewhere: its readiness is all we can see
            await asyncio.sleep(0.1)
        else:
            logger.warning("model %s: stub still running %.0f s after unload", entry.id, 30)
        if entry.id not in self._loaded:  # not reloaded meanwhile
            usage = self.usage.get(entry.id)
            if usage is not None:
                usage.loaded_at = None
        logger.info("unloaded model %s", entry.id)


def _log_unload_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("unload after keep_alive 0 failed: %s", task.exception())
