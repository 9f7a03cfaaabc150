"""The catalogue of models the API offers for download: models_manifest.json, validated.

The JSON groups entries by the tasks' short names ("embedding", "caption", "ocr", "rerank"; see
`Task.short`); each entry's `kind` is its Task (config.yaml section).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from frontend.core.config import Task
from frontend.models.cache import InvalidModelId, check_hf_id
from frontend.tasks.common import is_builtin

MANIFEST_FILE = "models_manifest.json"
SHORT_NAMES = ", ".join(t.short for t in Task)


class ManifestError(ValueError):
    """models_manifest.json is malformed; the message says which entry and why."""


class UnknownTask(ValueError):
    """A task name that is neither a manifest task nor a config task."""


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str  # the manifest group the entry sits in (set by the loader, not in the JSON)
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    team: str = Field(min_length=1)
    size_mb: int = Field(ge=0)  # approximate download size
    dimensions: int | None = Field(default=None, gt=0)  # embeddings only
    large: bool = False  # needs a large GPU / lots of memory
    builtin: bool = False  # weights ship inside a Python package: nothing to download
    remote_code: bool = False  # the repo's modelling code lives on the hub (trust_remote_code)
    # trained Matryoshka-style: a prefix of the vector, re-normalized, is a good embedding
    # (the OpenAI API's `dimensions`)
    matryoshka: bool = False
    # approximate memory the model needs loaded at its checkpoint's dtype (weights, vision
    # tower, working memory for a short answer); 8-bit weights need about half, 4-bit a third
    memory_mb: int | None = Field(default=None, gt=0)
    # Ollama's library names of the same model ("llava:7b"): Ollama clients find it by them
    ollama: tuple[str, ...] = ()

    @property
    def kind(self) -> Task:
        """The task (config.yaml section) this model belongs in."""
        kind = Task.parse(self.task)
        assert kind is not None  # checked at validation
        return kind

    @model_validator(mode="after")
    def _check(self) -> ManifestEntry:
        kind = Task.parse(self.task)
        if kind is None or kind.short != self.task:  # groups use the short names
            raise ValueError(f"unknown task '{self.task}'")
        if self.builtin != is_builtin(self.id):
            raise ValueError(
                "builtin: true is for (and only for) engines shipped in a package "
                "(rapidocr/..., tesseract/...)"
            )
        if not self.builtin:
            try:
                check_hf_id(self.id)
            except InvalidModelId as exc:
                raise ValueError(str(exc)) from None
        vectors = self.task in ("embedding", "image_embedding")
        if self.task == "embedding" and self.dimensions is None:
            raise ValueError("embedding models need 'dimensions'")
        if not vectors and self.dimensions is not None:
            raise ValueError("'dimensions' is only meaningful for embedding models")
        if self.task != "embedding" and self.matryoshka:
            raise ValueError("'matryoshka' is only meaningful for embedding models")
        if self.ollama and self.task != "caption":
            raise ValueError("'ollama' names are only listed for caption models")
        return self


class Manifest:
    """Validated manifest entries, in file order, looked up by task or by id."""

    def __init__(self, entries: list[ManifestEntry]) -> None:
        self._entries = list(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        self._by_folded_id = {entry.id.casefold(): entry for entry in self._entries}
        self._by_ollama_name = {name: entry for entry in self._entries for name in entry.ollama}

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, task: str | None = None) -> list[ManifestEntry]:
        """All entries, or those of one task (manifest name such as "embedding", or config name
        such as "text_embedding"); UnknownTask for any other name."""
        if task is None:
            return list(self._entries)
        kind = Task.parse(task)
        if kind is None:
            raise UnknownTask(f"unknown model type '{task[:50]}'; expected one of {SHORT_NAMES}")
        return [entry for entry in self._entries if entry.kind is kind]

    def get(self, model_id: str) -> ManifestEntry | None:
        """The entry for a hub id (exact match first; hub ids are case-insensitive)."""
        return self._by_id.get(model_id) or self._by_folded_id.get(model_id.casefold())

    def by_ollama_name(self, name: str) -> ManifestEntry | None:
        """The entry Ollama's library calls `name` ("qwen2.5vl:3b"; "llava" is "llava:latest")."""
        return self._by_ollama_name.get(name.removesuffix(":latest").casefold())

    def ids(self) -> list[str]:
        return [entry.id for entry in self._entries]


def parse_manifest(data: Any) -> Manifest:
    """Validate the manifest's JSON structure; ManifestError names the offending entry."""
    if not isinstance(data, Mapping):
        raise ManifestError("the manifest must be an object keyed by task")
    groups = [t.short for t in Task]
    unknown = [str(task) for task in data if task not in groups]
    if unknown:
        raise ManifestError(f"unknown task group(s) {', '.join(unknown)}; expected {SHORT_NAMES}")
    entries: list[ManifestEntry] = []
    seen: dict[str, str] = {}
    for task in groups:
        group = data.get(task, [])
        if not isinstance(group, list):
            raise ManifestError(f"{task}: must be a list of models")
        for index, raw in enumerate(group):
            where = f"{task}[{index}]"
            if not isinstance(raw, Mapping):
                raise ManifestError(f"{where}: must be an object")
            if "task" in raw:
                raise ManifestError(f"{where}: 'task' is given by the group, not the entry")
            try:
                entry = ManifestEntry(**{**raw, "task": task})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                    for err in exc.errors()
                )
                raise ManifestError(f"{where} ({raw.get('id', '?')}): {problems}") from None
            folded = entry.id.casefold()
            if folded in seen:
                raise ManifestError(f"{where}: id '{entry.id}' is already listed in {seen[folded]}")
            seen[folded] = where
            entries.append(entry)
    return Manifest(entries)


def read_manifest_text() -> str:
    """The JSON shipped next to this module (package data, so it works from a wheel too)."""
    return (
        resources.files(__package__ or "frontend.models")
        .joinpath(MANIFEST_FILE)
        .read_text(encoding="utf-8")
    )


@functools.lru_cache(maxsize=1)
def load_manifest() -> Manifest:
    """The shipped manifest, parsed and validated once per process."""
    try:
        data = json.loads(read_manifest_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not valid JSON: {exc}") from None
    return parse_manifest(data)
