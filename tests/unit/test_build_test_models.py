"""tools/build_test_models.py: tiny caption, OCR and rerank models, idempotent and deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from frontend.models.cache import is_downloaded, snapshot_path
from tools.build_test_models import BUILDERS, TINY_RERANKER, build_test_models

IDS = {name: model_id for name, (model_id, _) in BUILDERS.items()}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    assert build_test_models(data) == IDS
    return data


def snapshot_digests(data: Path, model_id: str) -> dict[str, str]:
    snapshot = snapshot_path(data / "models" / "hub", model_id)
    assert snapshot is not None
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in snapshot.iterdir()}


@pytest.mark.parametrize("model_id", IDS.values())
def test_models_are_in_the_cache(data_dir: Path, model_id: str) -> None:
    assert is_downloaded(data_dir / "models" / "hub", model_id)
    files = snapshot_digests(data_dir, model_id)
    extra = "tokenizer.json" if model_id == TINY_RERANKER else "processor_config.json"
    assert {"config.json", "model.safetensors", extra} <= files.keys()


def test_second_call_keeps_what_is_there(data_dir: Path) -> None:
    hub = data_dir / "models" / "hub"
    before = {path: path.stat().st_mtime_ns for path in hub.rglob("*")}
    assert build_test_models(data_dir) == IDS
    assert {path: path.stat().st_mtime_ns for path in hub.rglob("*")} == before


@pytest.mark.parametrize("only", ["caption", "ocr", "rerank", "qwen2-vl", "smolvlm", "florence2"])
def test_fresh_builds_give_identical_files(data_dir: Path, tmp_path: Path, only: str) -> None:
    model_id = IDS[only]
    assert build_test_models(tmp_path, only=only) == {only: model_id}
    other = IDS["ocr" if only == "caption" else "caption"]
    assert not is_downloaded(tmp_path / "models" / "hub", other)
    # Same seed, same bytes: weights, configs and tokenizer files (and so the same revision).
    assert snapshot_digests(tmp_path, model_id) == snapshot_digests(data_dir, model_id)


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model group"):
        build_test_models(tmp_path, only="speech")
