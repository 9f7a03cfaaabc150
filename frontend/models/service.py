"""The model management API's logic: one view over the manifest, the configuration and the cache,
and the changes (add, download, delete, runtime settings) made through it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from frontend.core.config import RESERVED_MODEL_IDS, ModelEntry, Settings, Task
from frontend.core.errors import Conflict, InvalidRequest, ModelNotFound
from frontend.images.languages import model_languages
from frontend.models.cache import InvalidModelId, check_hf_id, repo_dir, snapshot_path
from frontend.models.disk import cached_ids, disk_usage, remove_repo
from frontend.models.downloads import DownloadJob, DownloadManager
from frontend.models.lifecycle import Lifecycle
from frontend.models.manifest import Manifest, ManifestEntry
from frontend.models.refs import check_ref, new_entry, new_id, parse_task
from frontend.models.registry import ModelRegistry
from frontend.models.schemas import AddModelRequest, ModelPatch
from frontend.models.store import FOREVER, SettingsStore
from frontend.tasks.common import is_builtin
from frontend.triton.repository import write_repository

logger = logging.getLogger(__name__)


class ModelService:
    """The model API's logic: listing, adding, downloading, deleting and runtime settings."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        lifecycle: Lifecycle,
        store: SettingsStore,
        downloads: DownloadManager,
        manifest: Manifest,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.lifecycle = lifecycle
        self.store = store
        self.downloads = downloads
        self.manifest = manifest
        self.hub_dir = registry.hub_dir
        self._changes = asyncio.Lock()  # add / delete / repository writes, one at a time

    # -- views ------------------------------------------------------------------------------

    def configured(self) -> list[tuple[Task, ModelEntry]]:
        """Every entry, enabled or not: config.yaml's and those added at runtime."""
        return list(self.registry.catalog.all(enabled=False))

    def _info(self, hf_model: str, entry: ModelEntry | None, task: str | None) -> dict[str, Any]:
        listed: ManifestEntry | None = self.manifest.get(hf_model)
        builtin = is_builtin(hf_model)
        downloaded, size = builtin, 0
        if not builtin:
            downloaded = snapshot_path(self.hub_dir, hf_model) is not None
            repo = repo_dir(self.hub_dir, hf_model)
            size = disk_usage(repo) if repo.is_dir() else 0
        if task is None and listed is not None:
            task = listed.task
        loaded = entry is not None and self.registry.is_loaded(entry.id)
        kind = Task.parse(task) if task is not None else None
        job = self.downloads.active_job(hf_model) if not builtin else None
        memory = gpu_memory = None
        keep_alive = expires = None
        if entry is not None:
            keep_alive = self.lifecycle.keep_alive_seconds(entry)
            if loaded:
                memory, gpu_memory = self.registry.footprint(entry.id)
                remaining = self.lifecycle.expires_in(entry)
                expires = None if remaining is None else round(max(remaining, 0.0), 1)
        return {
            "id": hf_model,
            "config_id": entry.id if entry else None,
            "task": task,
            "name": listed.name if listed else hf_model.split("/")[-1],
            "team": listed.team if listed else hf_model.split("/")[0],
            "size_mb": listed.size_mb if listed else None,
            "dimensions": (entry.dimensions if entry else None)
            or (listed.dimensions if listed else None),
            "large": bool(listed and listed.large),
            "in_manifest": listed is not None,
            "builtin": builtin,
            "downloaded": downloaded,
            "size_on_disk_bytes": size,
            "configured": entry is not None,
            "added_at_runtime": entry is not None and self.registry.catalog.is_added(entry.id),
            "enabled": bool(entry and entry.enabled),
            "default": bool(entry and kind and self.registry.catalog.is_default(kind, entry)),
            "pinned": entry is not None and self.registry.catalog.pinned(entry),
            "loaded": loaded,
            "memory_bytes": memory,
            "gpu_memory_bytes": gpu_memory,
            "keep_alive_seconds": keep_alive,
            "expires_in_seconds": expires,
            "download": job.to_dict() if job else None,
            "languages": self._languages(hf_model, entry, task),
        }

    @staticmethod
    def _languages(hf_model: str, entry: ModelEntry | None, task: str | None) -> list[str] | None:
        if task != Task.OCR.short:
            return None
        return model_languages(entry or ModelEntry(id="listed", hf_model=hf_model))

    def list_models(self, task: str | None = None) -> list[dict[str, Any]]:
        """Configured models first (one item each), then manifest and cached models."""
        wanted = parse_task(task).short if task is not None else None
        chosen: list[tuple[str, ModelEntry | None, str | None]] = []
        seen: set[str] = set()
        for entry_task, entry in self.configured():
            chosen.append((entry.hf_model, entry, entry_task.short))
            seen.add(entry.hf_model.casefold())
        for listed in self.manifest.entries():
            if listed.id.casefold() not in seen:
                chosen.append((listed.id, None, listed.task))
                seen.add(listed.id.casefold())
        downloading = [job.model_id for job in self.downloads.jobs() if not job.finished]
        for model_id in [*cached_ids(self.hub_dir), *downloading]:
            if model_id.casefold() not in seen:
                chosen.append((model_id, None, None))  # neither configured nor listed: no task
                seen.add(model_id.casefold())
        # Filtered before the disk and /proc are looked at for each model.
        return [
            self._info(hf_model, entry, task)
            for hf_model, entry, task in chosen
            if wanted is None or task == wanted
        ]

    def _entries_for(self, ref: str) -> list[tuple[Task, ModelEntry]]:
        by_id = [(t, e) for t, e in self.configured() if e.id == ref]
        return by_id or [(t, e) for t, e in self.configured() if e.hf_model == ref]

    def get(self, ref: str) -> dict[str, Any]:
        check_ref(ref)
        entries = self._entries_for(ref)
        if entries:
            task, entry = entries[0]
            return self._info(entry.hf_model, entry, task.short)
        if "/" in ref and (
            self.manifest.get(ref) is not None
            or self.downloads.active_job(ref) is not None
            or ref in cached_ids(self.hub_dir)
        ):
            return self._info(ref, None, None)
        raise ModelNotFound(f"model '{ref}' is not configured, listed or downloaded")

    # -- changes ----------------------------------------------------------------------------

    async def download(self, model_id: str) -> DownloadJob:
        try:
            check_hf_id(model_id)
            listed = self.manifest.get(model_id)
            if listed is not None and listed.remote_code:
                raise ValueError(
                    f"{model_id} needs code from the hub (trust_remote_code), which this "
                    "service does not run"
                )
            return await self.downloads.start(model_id)
        except ValueError as exc:  # InvalidModelId included
            raise InvalidRequest(str(exc)) from None

    async def add(self, request: AddModelRequest) -> dict[str, Any]:
        task = parse_task(request.task)
        hf_model = request.hf_model
        try:
            check_hf_id(hf_model)
        except InvalidModelId as exc:
            raise InvalidRequest(str(exc)) from None
        listed = self.manifest.get(hf_model)
        if listed is not None and listed.kind is not task:
            raise InvalidRequest(f"{hf_model} is a {listed.task} model, not {request.task}")
        if listed is not None and listed.remote_code:
            raise InvalidRequest(f"{hf_model} needs code from the hub (trust_remote_code)")
        if is_builtin(hf_model) and task is not Task.OCR:
            raise InvalidRequest(f"{hf_model} is an OCR engine")
        async with self._changes:
            for existing_task, existing in self.configured():
                if existing_task == task and existing.hf_model == hf_model:
                    raise Conflict(
                        f"{hf_model} is already configured for {request.task} as '{existing.id}'",
                        {"config_id": existing.id},
                    )
            model_id = request.id or new_id(hf_model, (e.id for _, e in self.configured()))
            if model_id in RESERVED_MODEL_IDS:
                raise InvalidRequest(f"'{model_id}' is a reserved name")
            if any(e.id == model_id for _, e in self.configured()):
                raise Conflict(f"model id '{model_id}' is already taken")
            dimensions = request.dimensions
            if dimensions is None and listed is not None:
                dimensions = listed.dimensions
            entry = new_entry(request, task, model_id, dimensions)
            self.registry.catalog.add(task, entry)
            if request.default:
                self.registry.catalog.set_default(task, entry)
            await asyncio.to_thread(write_repository, self.settings, self.configured())
        logger.info("added model %s (%s) for %s", entry.id, hf_model, task)
        return self._info(hf_model, entry, task.short)

    def patch(self, ref: str, patch: ModelPatch) -> dict[str, Any]:
        check_ref(ref)
        entries = self._entries_for(ref)
        if not entries:
            raise ModelNotFound(f"model '{ref}' is not configured")
        task, entry = entries[0]
        changes: dict[str, Any] = {}
        if "keep_alive_seconds" in patch.model_fields_set:
            value = patch.keep_alive_seconds
            cap = self.settings.resources.max_keep_alive_seconds
            if value is not None and value > cap:
                raise InvalidRequest(
                    f"keep_alive_seconds is above the limit of {cap:g} "
                    "(resources.max_keep_alive_seconds); use -1 to keep it loaded",
                )
            if value is not None and value < 0:
                value = FOREVER
            changes["keep_alive_seconds"] = value
            usage = self.registry.usage.get(entry.id)
            if usage is not None:
                usage.keep_alive = None  # the operator's setting replaces a request's
        if "pinned" in patch.model_fields_set:
            changes["pinned"] = patch.pinned
        default = self._default_change(task, entry, patch)
        if changes:
            self.store.set_override(entry.id, **changes)
        if default is not None:
            self.registry.catalog.set_default(task, entry if default else None)
            chosen = self.registry.catalog.default(task)
            logger.info("%s default model: %s", task, chosen.entry.id if chosen else None)
        return self._info(entry.hf_model, entry, task.short)

    def _default_change(self, task: Task, entry: ModelEntry, patch: ModelPatch) -> bool | None:
        """What `default` in a PATCH asks: True to make `entry` the default, False to go back
        to config.yaml's, None for no change. Checked before anything is changed."""
        if "default" not in patch.model_fields_set:
            return None
        catalog = self.registry.catalog
        if patch.default:
            if not entry.enabled:
                raise InvalidRequest(
                    f"model '{entry.id}' is disabled in config.yaml: it cannot be the default"
                )
            return True
        if not catalog.is_default(task, entry):
            return None  # not the default: nothing to unset
        configured = catalog.configured_default(task)
        if configured is not None and configured.entry.id == entry.id:
            if patch.default is None:
                return None  # already config.yaml's choice
            raise InvalidRequest(
                f"'{entry.id}' is config.yaml's default {task.short} model; make another "
                "model the default instead (a task always has one)",
                {"field": "default"},
            )
        return False

    async def delete(self, ref: str) -> dict[str, Any]:
        """Unload whatever uses the model, then remove its cache folder (and the entry, for a
        model added at runtime). Never touches anything but hub/models--ORG--NAME."""
        check_ref(ref)
        entries = self._entries_for(ref)
        if entries:
            hf_model = entries[0][1].hf_model
        elif "/" in ref:
            hf_model = ref
        else:
            raise ModelNotFound(f"model '{ref}' is not configured")
        if is_builtin(hf_model):
            raise InvalidRequest(f"{hf_model} ships with its Python package: nothing to delete")
        async with self._changes:
            if self.downloads.active_job(hf_model) is not None:
                raise Conflict(f"{hf_model} is being downloaded; cancel the download first")
            repo = repo_dir(self.hub_dir, hf_model)
            if repo.parent.resolve() != self.hub_dir.resolve():
                raise InvalidRequest(f"'{hf_model}' is not a model folder")
            # A link is never followed: whatever it points at is not ours to delete.
            present = repo.is_dir() and not repo.is_symlink()
            added = [
                (t, e)
                for t, e in self.configured()
                if e.hf_model == hf_model
                and self.registry.catalog.is_added(e.id)
                and (e.id == ref or ref == hf_model)
            ]
            if not present and not added:
                raise ModelNotFound(f"model '{hf_model}' is not downloaded")
            users = [e for _, e in self.configured() if e.hf_model == hf_model]
            for entry in users:
                if self.registry.is_loaded(entry.id) or self.registry.is_loading(entry.id):
                    await self.registry.unload(entry)
            freed = 0
            if present:
                freed = await asyncio.to_thread(remove_repo, self.hub_dir, repo)
            restored = self._forget_defaults(users)
            for _, entry in added:
                self.registry.catalog.remove(entry.id)
            if added:
                await asyncio.to_thread(write_repository, self.settings, self.configured())
        logger.info("deleted model %s (%d bytes)", hf_model, freed)
        return {
            "id": hf_model,
            "deleted": True,
            "freed_bytes": freed,
            "removed_config_ids": [e.id for _, e in added],
            "defaults_restored": {
                task.short: (found.entry.id if found is not None else None)
                for task in restored
                for found in [self.registry.catalog.default(task)]
            },
        }

    def _forget_defaults(self, users: list[ModelEntry]) -> list[Task]:
        """The tasks whose runtime default was one of `users` (their files or entry are being
        deleted): they go back to config.yaml's default."""
        catalog = self.registry.catalog
        ids = {entry.id for entry in users}
        restored = [task for task in Task if self.store.default_for(task) in ids]
        for task in restored:
            catalog.set_default(task, None)
        return restored
