"""The SQLite settings store: runtime overrides and added models survive a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from frontend.core.config import ModelEntry, load_settings
from frontend.models.store import FOREVER, ModelOverride, SettingsStore, apply_added_models


def test_overrides_survive_a_restart_and_reset_to_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "settings.db"
    store = SettingsStore(path)
    assert store.override("minilm") == ModelOverride()
    store.set_override("minilm", keep_alive_seconds=120.0)
    store.set_override("minilm", pinned=True)  # keeps the keep-alive set before
    store.set_override("ocr", keep_alive_seconds=FOREVER)
    store.close()

    reopened = SettingsStore(path)
    assert reopened.override("minilm") == ModelOverride(120.0, True)
    assert reopened.override("ocr") == ModelOverride(FOREVER, None)
    reopened.set_override("minilm", keep_alive_seconds=None, pinned=None)
    assert reopened.override("minilm") == ModelOverride()
    rows = sqlite3.connect(path).execute("SELECT model_id FROM model_settings").fetchall()
    assert rows == [("ocr",)]  # a fully reset model leaves no row behind


def test_added_models_are_applied_after_the_configured_ones(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.db")
    added = ModelEntry(id="bge", hf_model="BAAI/bge-small-en-v1.5", dimensions=384)
    clash = ModelEntry(id="minilm", hf_model="acme/other")
    store.add_model("text_embedding", added)
    store.add_model("image_caption", clash)
    store.set_override("bge", pinned=True)
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models={"text_embedding": [{"id": "minilm", "hf_model": "org/minilm"}]},
    )

    applied = apply_added_models(settings, SettingsStore(tmp_path / "settings.db"))

    assert applied == ["bge"]  # config.yaml wins the clash on "minilm"
    assert [e.id for e in settings.models.text_embedding] == ["minilm", "bge"]
    assert settings.models.text_embedding[1] == added
    assert settings.models.image_caption == []
    assert store.remove_model("bge") is True
    assert store.remove_model("bge") is False
    assert store.override("bge") == ModelOverride()  # its overrides go with it
    assert [task for task, _ in store.added_models()] == ["image_caption"]


def test_a_database_from_before_keep_alive_seconds_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "settings.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE model_settings (model_id TEXT PRIMARY KEY, "
        "model_idle_timeout_seconds REAL, pinned INTEGER, updated_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO model_settings VALUES ('minilm', 90.0, NULL, 0)")
    old.commit()
    old.close()

    store = SettingsStore(path)
    assert store.override("minilm") == ModelOverride(keep_alive_seconds=90.0)
    store.set_override("minilm", pinned=True)
    assert SettingsStore(path).override("minilm") == ModelOverride(90.0, True)
