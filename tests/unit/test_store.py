"""The SQLite settings store: runtime overrides and added models survive a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from frontend.core.config import ModelEntry, Task, load_settings
from frontend.models.catalog import ModelCatalog
from frontend.models.store import FOREVER, ModelOverride, SettingsStore


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

    catalog = ModelCatalog(settings, SettingsStore(tmp_path / "settings.db"))

    assert catalog.added == ["bge"]  # config.yaml wins the clash on "minilm"
    embedders = [f.entry for f in catalog.all(Task.TEXT_EMBEDDING)]
    assert [e.id for e in embedders] == ["minilm", "bge"]
    assert embedders[1] == added
    assert catalog.all(Task.IMAGE_CAPTION) == []
    assert [e.id for e in settings.models.text_embedding] == ["minilm"]  # settings untouched
    assert store.remove_model("bge") is True
    assert store.remove_model("bge") is False
    assert store.override("bge") == ModelOverride()  # its overrides go with it
    assert [task for task, _ in store.added_models()] == ["image_caption"]


def test_the_catalog_persists_what_it_adds_and_removes(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models={"text_embedding": [{"id": "minilm", "hf_model": "org/minilm"}]},
    )
    catalog = ModelCatalog(settings, SettingsStore(tmp_path / "settings.db"))
    bge = ModelEntry(id="bge", hf_model="BAAI/bge-small-en-v1.5")
    blip = ModelEntry(id="blip", hf_model="Salesforce/blip", enabled=False)

    catalog.add(Task.TEXT_EMBEDDING, bge)
    catalog.add(Task.IMAGE_CAPTION, blip)

    assert catalog.lookup("bge", Task.TEXT_EMBEDDING) == bge
    assert catalog.find("blip") is None  # disabled: listed, never served
    assert catalog.task_of(blip) is Task.IMAGE_CAPTION
    assert [f.entry.id for f in catalog.all(enabled=False)] == ["minilm", "bge", "blip"]
    assert [e.id for e in settings.models.text_embedding] == ["minilm"]  # settings untouched
    reopened = ModelCatalog(settings, SettingsStore(tmp_path / "settings.db"))
    assert reopened.added == ["bge", "blip"]
    assert reopened.is_added("bge") and not reopened.is_added("minilm")

    assert catalog.remove("bge") is True
    assert catalog.remove("bge") is False
    assert [f.entry.id for f in catalog.all(Task.TEXT_EMBEDDING)] == ["minilm"]
    assert ModelCatalog(settings, SettingsStore(tmp_path / "settings.db")).added == ["blip"]


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


def test_a_runtime_default_survives_a_restart_and_falls_back_when_its_model_goes(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models={
            "text_embedding": [
                {"id": "minilm", "hf_model": "org/minilm", "default": True},
                {"id": "mpnet", "hf_model": "org/mpnet"},
                {"id": "off", "hf_model": "org/off", "enabled": False},
            ]
        },
    )
    store = SettingsStore(tmp_path / "settings.db")
    catalog = ModelCatalog(settings, store)
    added = ModelEntry(id="bge", hf_model="BAAI/bge-small-en-v1.5")
    catalog.add(Task.TEXT_EMBEDDING, added)
    catalog.set_default(Task.TEXT_EMBEDDING, added)
    store.close()

    restarted = ModelCatalog(settings, SettingsStore(tmp_path / "settings.db"))
    found = restarted.find(None, Task.TEXT_EMBEDDING)
    assert found is not None and found.entry.id == "bge"
    assert [
        restarted.is_default(Task.TEXT_EMBEDDING, e) for e in settings.models.text_embedding
    ] == [
        False,
        False,
        False,
    ]
    restarted.set_default(Task.TEXT_EMBEDDING, settings.models.text_embedding[1])  # replaces bge
    assert restarted.lookup(None, Task.TEXT_EMBEDDING).id == "mpnet"
    assert restarted.remove("bge") is True  # not the default any more: nothing changes
    assert restarted.lookup(None, Task.TEXT_EMBEDDING).id == "mpnet"
    restarted.set_default(Task.TEXT_EMBEDDING, settings.models.text_embedding[0])
    assert restarted.store is not None
    assert restarted.store.default_for(Task.TEXT_EMBEDDING) is None  # config.yaml's own choice

    # a stored default that is no enabled model of the task (config.yaml changed) is ignored
    restarted.store.set_default(Task.TEXT_EMBEDDING, "off")
    assert restarted.lookup(None, Task.TEXT_EMBEDDING).id == "minilm"
    restarted.store.set_default(Task.TEXT_EMBEDDING, "bge")
    restarted.add(Task.TEXT_EMBEDDING, added)
    assert restarted.lookup(None, Task.TEXT_EMBEDDING).id == "bge"
    restarted.remove("bge")  # removing the default model: config.yaml's default again
    assert restarted.lookup(None, Task.TEXT_EMBEDDING).id == "minilm"
    assert restarted.store.default_for(Task.TEXT_EMBEDDING) is None
