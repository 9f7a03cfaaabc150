"""Which model a name means: the enabled entries of config.yaml and those added at runtime,
by config id or Hugging Face id, and the operator's runtime overrides of them."""

from __future__ import annotations

from typing import NamedTuple

from frontend.core.config import ModelEntry, Settings, Task
from frontend.core.errors import ModelNotFound
from frontend.models.store import SettingsStore


class Found(NamedTuple):
    task: Task
    entry: ModelEntry


class ModelCatalog:
    def __init__(self, settings: Settings, store: SettingsStore | None = None) -> None:
        self.settings = settings  # runtime-added models are applied to this copy at start
        self.store = store  # runtime overrides (keep-alive, pinning)

    def all(self, task: Task | None = None, *, enabled: bool = True) -> list[Found]:
        tasks = list(Task) if task is None else [task]
        return [
            Found(t, e)
            for t in tasks
            for e in self.settings.models.entries(t)
            if e.enabled or not enabled
        ]

    def find(
        self, ref: str | None, task: Task | None = None, *, enabled: bool = True
    ) -> Found | None:
        """By config id, else by HF id; with no ref, the task's default (else first) model."""
        found = self.all(task, enabled=enabled)
        if ref is None:
            return next((f for f in found if f.entry.default), found[0] if found else None)
        by_id = next((f for f in found if f.entry.id == ref), None)
        return by_id or next((f for f in found if f.entry.hf_model == ref), None)

    def lookup(self, ref: str | None, task: Task | None = None) -> ModelEntry:
        """As `find` among enabled models; 404 MODEL_NOT_FOUND naming the choices otherwise."""
        found = self.find(ref, task)
        if found is not None:
            return found.entry
        kind = f"{task} " if task is not None else ""
        if ref is None:
            raise ModelNotFound(f"no {kind}model is enabled in the configuration")
        raise ModelNotFound(
            f"model '{ref[:100]}' is not an enabled {kind}model",
            {"model_id": ref[:100], "available_models": [f.entry.id for f in self.all(task)]},
        )

    def task_of(self, entry: ModelEntry) -> Task | None:
        found = self.find(entry.id, enabled=False)
        return found.task if found is not None else None

    def pinned(self, entry: ModelEntry) -> bool:
        """Pinned in config.yaml, unless an operator changed it at runtime."""
        override = self.store.override(entry.id).pinned if self.store is not None else None
        return entry.pinned if override is None else override
