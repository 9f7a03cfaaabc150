"""Which configured model serves a request, and loading it into Triton on first use."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tritonclient.utils import InferenceServerException

from frontend.core.config import ModelEntry, Settings, Task
from frontend.core.errors import MODEL_LOAD_FAILED, MODEL_NOT_FOUND, SERVICE_UNAVAILABLE, APIError
from frontend.models.cache import is_downloaded
from frontend.tasks.common import is_builtin
from frontend.triton.gateway import ModelNotLoaded, TritonGateway

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ModelRegistry:
    def __init__(self, settings: Settings, gateway: TritonGateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self.hub_dir = settings.models_dir / "hub"
        self._loaded: set[str] = set()
        self._loading: dict[str, asyncio.Future[None]] = {}
        self.load_count: dict[str, int] = {}
        self.last_load_seconds: dict[str, float] = {}

    def enabled(self, task: Task) -> list[ModelEntry]:
        return [e for e in self.settings.models.entries(task) if e.enabled]

    def resolve(self, task: Task, requested: str | None) -> ModelEntry:
        """By config id or HF id; the task's default (or first enabled) model when none is named."""
        entries = self.enabled(task)
        if requested is None:
            for entry in entries:
                if entry.default:
                    return entry
            if entries:
                return entries[0]
            raise APIError(404, MODEL_NOT_FOUND, f"no {task} model is enabled in the configuration")
        for entry in entries:
            if requested in (entry.id, entry.hf_model):
                return entry
        raise APIError(
            404,
            MODEL_NOT_FOUND,
            f"model '{requested[:100]}' is not an enabled {task} model",
            {"model_id": requested[:100], "available_models": [e.id for e in entries]},
        )

    async def ensure_loaded(self, entry: ModelEntry) -> None:
        """Load once: concurrent first requests share one load attempt and its outcome."""
        if entry.id in self._loaded:
            return
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
            raise APIError(
                503,
                MODEL_LOAD_FAILED,
                f"model '{entry.id}' ({entry.hf_model}) is not downloaded; import it with "
                f"'homelab-ai models import <folder> --id {entry.hf_model}' or download it",
                {"model_id": entry.id, "hf_model": entry.hf_model},
            )
        started = time.monotonic()
        logger.info("loading model %s (%s)", entry.id, entry.hf_model)
        try:
            await self.gateway.load(entry.id)
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            logger.error("loading %s failed: %s", entry.id, str(exc.message())[:2000])
            if (
                status.endswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))
                and not await self.gateway.is_ready()
            ):
                raise APIError(
                    503, SERVICE_UNAVAILABLE, "the inference server is not reachable; retry shortly"
                ) from None
            raise APIError(
                503,
                MODEL_LOAD_FAILED,
                f"model '{entry.id}' failed to load; the server log has the cause",
                {"model_id": entry.id, "hf_model": entry.hf_model},
            ) from None
        elapsed = time.monotonic() - started
        self.load_count[entry.id] = self.load_count.get(entry.id, 0) + 1
        self.last_load_seconds[entry.id] = elapsed
        logger.info("loaded model %s in %.2f s", entry.id, elapsed)

    def forget(self, model_id: str) -> None:
        self._loaded.discard(model_id)

    async def run(self, entry: ModelEntry, call: Callable[[], Awaitable[T]]) -> T:
        """Run an inference call, loading the model first; reload once if Triton lost it."""
        await self.ensure_loaded(entry)
        try:
            return await call()
        except ModelNotLoaded:
            # Unloaded behind our back (by an admin, or Triton restarted): load and retry once.
            self.forget(entry.id)
            await self.ensure_loaded(entry)
            try:
                return await call()
            except ModelNotLoaded:
                self.forget(entry.id)
                raise APIError(
                    503, MODEL_LOAD_FAILED, f"model '{entry.id}' is not available after loading"
                ) from None

    async def unload(self, entry: ModelEntry) -> None:
        attempt = self._loading.get(entry.id)
        if attempt is not None:  # let a load in progress finish first
            await asyncio.gather(attempt, return_exceptions=True)
        self._loaded.discard(entry.id)
        await self.gateway.unload(entry.id)
