"""frontend.models.manifest: the shipped catalogue and its validation."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from frontend.core.config import Task
from frontend.models.cache import check_hf_id
from frontend.models.manifest import (
    ManifestError,
    UnknownTask,
    load_manifest,
    parse_manifest,
)
from frontend.tasks.common import is_builtin


def _raw() -> dict[str, Any]:
    text = resources.files("frontend.models").joinpath("models_manifest.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_loads_with_every_task() -> None:
    manifest = load_manifest()
    assert set(_raw()) == {"embedding", "caption", "ocr", "rerank", "image_embedding"}
    for task in Task:
        assert manifest.entries(task.short), task
    assert len(manifest) == len(manifest.entries()) == sum(len(v) for v in _raw().values())
    assert load_manifest() is manifest  # parsed once


def test_task_names_match_config_sections() -> None:
    assert {t.short: t.value for t in Task} == {
        "embedding": "text_embedding",
        "caption": "image_caption",
        "ocr": "ocr",
        "rerank": "rerank",
        "image_embedding": "image_embedding",
    }
    for task in Task:
        assert Task.parse(task.value) is Task.parse(task.short) is task
    assert Task.parse("audio") is None
    manifest = load_manifest()
    assert manifest.entries("text_embedding") == manifest.entries("embedding")
    assert all(e.kind is Task.IMAGE_CAPTION for e in manifest.entries("caption"))
    with pytest.raises(UnknownTask):
        manifest.entries("audio")


def test_ids_unique_and_valid() -> None:
    manifest = load_manifest()
    ids = manifest.ids()
    assert len({i.casefold() for i in ids}) == len(ids)
    for entry in manifest.entries():
        assert entry.name and entry.team and entry.size_mb >= 0
        if not entry.builtin:
            check_hf_id(entry.id)
            assert entry.size_mb > 0


def test_embeddings_have_dimensions() -> None:
    manifest = load_manifest()
    dims = {e.id: e.dimensions for e in manifest.entries("embedding")}
    assert dims["sentence-transformers/all-MiniLM-L6-v2"] == 384
    assert dims["BAAI/bge-large-en-v1.5"] == 1024
    assert all(isinstance(d, int) and d > 0 for d in dims.values())
    assert all(e.dimensions is None for e in manifest.entries("caption") + manifest.entries("ocr"))


def test_get_and_flags() -> None:
    manifest = load_manifest()
    minilm = manifest.get("sentence-transformers/all-MiniLM-L6-v2")
    assert minilm is not None and minilm.task == "embedding" and minilm.team
    assert manifest.get("baai/BGE-small-en-v1.5") is manifest.get("BAAI/bge-small-en-v1.5")
    assert manifest.get("nobody/nothing") is None
    rapid = manifest.get("rapidocr/PP-OCRv4")
    assert rapid is not None and rapid.builtin and rapid.task == "ocr" and is_builtin(rapid.id)
    assert [e.id for e in manifest.entries() if e.builtin] == ["rapidocr/PP-OCRv4", "tesseract/5"]
    llava = manifest.get("llava-hf/llava-1.5-7b-hf")
    assert llava is not None and llava.large and llava.task == "caption"
    assert {e.id for e in manifest.entries("ocr")} >= {
        "microsoft/trocr-base-printed",
        "microsoft/trocr-small-printed",
        "microsoft/trocr-base-handwritten",
    }


def _entry(**overrides: Any) -> dict[str, Any]:
    return {"id": "org/model", "name": "Model", "team": "Org", "size_mb": 10, **overrides}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "object keyed by task"),
        ({"audio": []}, "unknown task"),
        ({"caption": {}}, "list"),
        ({"caption": [_entry(), _entry(name="again")]}, "already listed"),
        ({"caption": [_entry()], "ocr": [_entry(id="ORG/Model")]}, "already listed"),
        ({"caption": [_entry(id="../../etc")]}, "ORG/NAME"),
        ({"caption": [_entry(id="org/a/b")]}, "ORG/NAME"),
        ({"embedding": [_entry()]}, "dimensions"),
        ({"caption": [_entry(dimensions=3)]}, "dimensions"),
        ({"ocr": [_entry(id="rapidocr/x")]}, "builtin"),
        ({"ocr": [_entry(builtin=True)]}, "builtin"),
        ({"caption": [_entry(size_mb=-1)]}, "size_mb"),
        ({"caption": [_entry(extra=1)]}, "extra"),
        ({"caption": [_entry(task="ocr")]}, "given by the group"),
        ({"caption": [{"id": "org/model"}]}, "name"),
    ],
)
def test_invalid_manifests_are_rejected(data: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(data)


def test_valid_minimal_manifest() -> None:
    manifest = parse_manifest(
        {"embedding": [_entry(dimensions=8)], "ocr": [_entry(id="rapidocr/x", builtin=True)]}
    )
    assert [e.id for e in manifest.entries()] == ["org/model", "rapidocr/x"]
    assert manifest.entries("caption") == []
