"""A small SQLite store for what operators change at runtime: per-model keep-alive and pinning,
each task's default model, and models added through the API. It lives at
<data_dir>/settings.db, next to the model cache, so changes survive restarts; config.yaml is
never rewritten (its comments are the docs).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontend.core.config import ModelEntry, Task

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_settings (
    model_id TEXT PRIMARY KEY,
    keep_alive_seconds REAL,           -- NULL: the configured keep-alive; -1: never unload
    pinned INTEGER,                    -- NULL: as configured
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS added_models (
    model_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    entry TEXT NOT NULL,               -- the ModelEntry as JSON
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS task_defaults (
    task TEXT PRIMARY KEY,             -- one default per task
    model_id TEXT NOT NULL,            -- a config id (config.yaml's or added at runtime)
    updated_at REAL NOT NULL
);
"""
FOREVER = -1.0


def _migrate(db: sqlite3.Connection) -> None:
    """Rename the keep-alive column of databases written before it was `keep_alive_seconds`
    (it was `model_idle_timeout_seconds`; same unit, same meaning)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(model_settings)")}
    if "model_idle_timeout_seconds" in columns:
        db.execute(
            "ALTER TABLE model_settings RENAME COLUMN model_idle_timeout_seconds "
            "TO keep_alive_seconds"
        )


@dataclass(frozen=True)
class ModelOverride:
    keep_alive_seconds: float | None = None  # -1: keep loaded
    pinned: bool | None = None


class SettingsStore:
    """Thread-safe; every call is one short transaction (the file is tiny)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Several frontends may share one data dir: wait for each other's writes.
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._db.isolation_level = None  # autocommit; explicit transactions below
        with self._lock:
            self._db.executescript(_SCHEMA)
            _migrate(self._db)
        self._overrides: dict[str, ModelOverride] = self._read_overrides()
        self._added: set[str] = {entry.id for _, entry in self.added_models()}
        self._defaults: dict[str, str] = self._read_defaults()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- per-model overrides ---------------------------------------------------------------

    def _read_overrides(self) -> dict[str, ModelOverride]:
        with self._lock:
            rows = self._db.execute(
                "SELECT model_id, keep_alive_seconds, pinned FROM model_settings"
            ).fetchall()
        return {
            row[0]: ModelOverride(row[1], None if row[2] is None else bool(row[2])) for row in rows
        }

    def override(self, model_id: str) -> ModelOverride:
        return self._overrides.get(model_id, ModelOverride())

    def set_override(self, model_id: str, **changes: Any) -> ModelOverride:
        """Change `keep_alive_seconds` and/or `pinned` (None resets to the configuration)."""
        current = self.override(model_id)
        merged = ModelOverride(
            changes.get("keep_alive_seconds", current.keep_alive_seconds),
            changes.get("pinned", current.pinned),
        )
        with self._lock:
            if merged == ModelOverride():
                self._db.execute("DELETE FROM model_settings WHERE model_id = ?", (model_id,))
            else:
                self._db.execute(
                    "INSERT INTO model_settings VALUES (?, ?, ?, ?) ON CONFLICT(model_id) DO "
                    "UPDATE SET keep_alive_seconds = excluded.keep_alive_seconds,"
                    " pinned = excluded.pinned, updated_at = excluded.updated_at",
                    (
                        model_id,
                        merged.keep_alive_seconds,
                        None if merged.pinned is None else int(merged.pinned),
                        time.time(),
                    ),
                )
        if merged == ModelOverride():
            self._overrides.pop(model_id, None)
        else:
            self._overrides[model_id] = merged
        return merged

    # -- each task's default model ---------------------------------------------------------

    def _read_defaults(self) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT task, model_id FROM task_defaults").fetchall()
        return {row[0]: row[1] for row in rows}

    def default_for(self, task: Task) -> str | None:
        """The model id an operator made the task's default, or None (config.yaml decides)."""
        return self._defaults.get(task)

    def set_default(self, task: Task, model_id: str | None) -> None:
        """Make `model_id` the task's default, replacing the previous one; None forgets it."""
        with self._lock:
            if model_id is None:
                self._db.execute("DELETE FROM task_defaults WHERE task = ?", (task,))
            else:
                self._db.execute(
                    "INSERT INTO task_defaults VALUES (?, ?, ?) ON CONFLICT(task) DO UPDATE SET "
                    "model_id = excluded.model_id, updated_at = excluded.updated_at",
                    (task, model_id, time.time()),
                )
        if model_id is None:
            self._defaults.pop(task, None)
        else:
            self._defaults[task] = model_id

    # -- models added through the API ------------------------------------------------------

    def added_models(self) -> list[tuple[Task, ModelEntry]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task, entry FROM added_models ORDER BY added_at"
            ).fetchall()
        return [(Task(row[0]), ModelEntry(**json.loads(row[1]))) for row in rows]

    def is_added(self, model_id: str) -> bool:
        return model_id in self._added

    def add_model(self, task: Task, entry: ModelEntry) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO added_models VALUES (?, ?, ?, ?)",
                (entry.id, task, entry.model_dump_json(), time.time()),
            )
        self._added.add(entry.id)

    def remove_model(self, model_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM added_models WHERE model_id = ?", (model_id,))
            self._db.execute("DELETE FROM model_settings WHERE model_id = ?", (model_id,))
            # A removed model is no task's default: the configured default serves again.
            self._db.execute("DELETE FROM task_defaults WHERE model_id = ?", (model_id,))
        self._overrides.pop(model_id, None)
        self._defaults = {t: m for t, m in self._defaults.items() if m != model_id}
        self._added.discard(model_id)
        return cursor.rowcount > 0
