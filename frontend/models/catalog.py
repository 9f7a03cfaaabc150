"""Which model a name means: the enabled entries of config.yaml and those added at runtime,
by config id, Hugging Face id or Ollama's name of a manifest model, each task's default, and
the operator's runtime overrides."""

from __future__ import annotations

from typing import NamedTuple

from frontend.core.config import ModelEntry, Settings, Task
from frontend.core.errors import ModelNotFound
from frontend.models.manifest import load_manifest
from frontend.models.store import SettingsStore


class Found(NamedTuple):
    task: Task
    entry: ModelEntry


class ModelCatalog:
    """config.yaml's entries (never changed) followed by the models added through the API, which
    the catalog owns: read from the SettingsStore at start, persisted there on add/remove."""

    def __init__(self, settings: Settings, store: SettingsStore | None = None) -> None:
        self.settings = settings
        self.store = store  # runtime overrides (keep-alive, pinning) and added models
        self._added: list[Found] = []
        if store is not None:
            taken = {e.id for task in Task for e in settings.models.entries(task)}
            for task, entry in store.added_models():
                if entry.id not in taken:  # config.yaml wins on clashes
                    self._added.append(Found(task, entry))
                    taken.add(entry.id)

    @property
    def added(self) -> list[str]:
        """Ids of the models added at runtime, oldest first."""
        return [f.entry.id for f in self._added]

    def is_added(self, model_id: str) -> bool:
        return any(f.entry.id == model_id for f in self._added)

    def add(self, task: Task, entry: ModelEntry) -> None:
        """Serve a new model from now on, and after restarts (persisted in the store)."""
        if self.store is not None:
            self.store.add_model(task, entry)
        self._added.append(Found(task, entry))

    def remove(self, model_id: str) -> bool:
        """Forget a model added at runtime and its overrides; False if there was none."""
        stored = self.store.remove_model(model_id) if self.store is not None else False
        kept = [f for f in self._added if f.entry.id != model_id]
        removed = stored or len(kept) < len(self._added)
        self._added = kept
        return removed

    def all(self, task: Task | None = None, *, enabled: bool = True) -> list[Found]:
        """Per task, config.yaml's entries then the added ones; only enabled ones by default."""
        tasks = list(Task) if task is None else [task]
        return [
            found
            for t in tasks
            for found in [
                *(Found(t, e) for e in self.settings.models.entries(t)),
                *(f for f in self._added if f.task == t),
            ]
            if found.entry.enabled or not enabled
        ]

    def default(self, task: Task) -> Found | None:
        """The model a request of `task` without a model gets: the one an operator chose at
        runtime (PATCH /api/models/{id} with default: true) while it is still an enabled model
        of the task, else config.yaml's `default: true` entry, else the task's first model."""
        chosen = self.store.default_for(task) if self.store is not None else None
        runtime = next((f for f in self.all(task) if f.entry.id == chosen), None)
        return runtime or self.configured_default(task)

    def configured_default(self, task: Task) -> Found | None:
        """What `default` falls back to: config.yaml's default (else first) enabled model."""
        found = self.all(task)
        return next((f for f in found if f.entry.default), found[0] if found else None)

    def is_default(self, task: Task, entry: ModelEntry) -> bool:
        default = self.default(task)
        return default is not None and default.entry.id == entry.id

    def set_default(self, task: Task, entry: ModelEntry | None) -> None:
        """Make `entry` the task's default (persisted), replacing the previous choice; None
        goes back to config.yaml's."""
        if self.store is None:
            raise RuntimeError("runtime defaults need the settings store")
        configured = self.configured_default(task)
        if entry is not None and configured is not None and configured.entry.id == entry.id:
            entry = None  # config.yaml's own choice: nothing to remember
        self.store.set_default(task, None if entry is None else entry.id)

    def find(
        self, ref: str | None, task: Task | None = None, *, enabled: bool = True
    ) -> Found | None:
        """By config id, else by HF id; with no ref, the task's default (else first) model."""
        found = self.all(task, enabled=enabled)
        if ref is None:
            tasks = list(Task) if task is None else [task]
            default = next((d for t in tasks if (d := self.default(t)) is not None), None)
            return default or (found[0] if found else None)
        by_id = next((f for f in found if f.entry.id == ref), None)
        by_hf_id = by_id or next((f for f in found if f.entry.hf_model == ref), None)
        if by_hf_id is not None:
            return by_hf_id
        # Ollama's library name ("qwen2.5vl:3b") of a manifest model enabled here by its HF id
        listed = load_manifest().by_ollama_name(ref)
        return next((f for f in found if listed and f.entry.hf_model == listed.id), None)

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
