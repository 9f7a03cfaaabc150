"""The embedding task that runs inside Triton: ONNX engine parity, export caching, fallback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from frontend.models.cache import import_model, snapshot_path
from frontend.tasks.embedding import EmbeddingTask
from frontend.tasks.onnx_encoder import export_path
from tests.conftest import MINILM_ID

TEXTS = ["hello world", "A man is eating food.", "Ünïcödé 🚀 日本語", "x " * 400]


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory, minilm_source: Path) -> Path:
    home = tmp_path_factory.mktemp("hf-home")
    import_model(minilm_source, MINILM_ID, home / "hub")
    return home


@pytest.fixture
def hf_home(models_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(models_home))
    return models_home


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_engine_matches_torch_and_caches_its_export(hf_home: Path) -> None:
    snapshot = snapshot_path(hf_home / "hub", MINILM_ID)
    assert snapshot is not None
    onnx = EmbeddingTask(MINILM_ID, engine="onnx")
    torch_task = EmbeddingTask(MINILM_ID, engine="torch")
    assert (onnx.engine, torch_task.engine) == ("onnx", "torch")
    assert onnx.precision == torch_task.precision == "float32"

    got, expected = onnx.embed(TEXTS), torch_task.embed(TEXTS)

    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    assert cosines(got, expected).min() >= 0.99999
    exported = export_path(snapshot)
    assert exported.is_file()
    assert exported.stat().st_mode & 0o777 == 0o644
    mtime = exported.stat().st_mtime_ns
    assert EmbeddingTask(MINILM_ID, engine="auto").engine == "onnx"
    assert exported.stat().st_mtime_ns == mtime  # reused, not exported again


def test_batch_order_and_empty_batch(hf_home: Path) -> None:
    task = EmbeddingTask(MINILM_ID)
    together = task.embed(TEXTS)
    one_by_one = np.concatenate([task.embed([t]) for t in TEXTS])
    assert cosines(together, one_by_one).min() >= 0.99999
    assert task.embed([]).shape == (0, 384)


def test_corrupt_export_falls_back_to_torch_or_fails_when_onnx_is_required(
    tmp_path: Path, minilm_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    snapshot = import_model(minilm_source, MINILM_ID, home / "hub").snapshot
    monkeypatch.setenv("HF_HOME", str(home))
    broken = export_path(snapshot)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx model")

    fallback = EmbeddingTask(MINILM_ID, engine="auto")
    assert fallback.engine == "torch"
    assert EmbeddingTask(MINILM_ID, engine="torch", fp16=True).precision == "float32"  # CPU
    assert fallback.embed(["still works"]).shape == (1, 384)
    with pytest.raises(Exception, match=r"(?i)protobuf|onnx|load"):
        EmbeddingTask(MINILM_ID, engine="onnx")
    shutil.rmtree(home)


def test_torch_engine_matches_encode_and_counts_tokens(hf_home: Path, minilm_source: Path) -> None:
    """The torch engine's one-forward path gives encode()'s vectors and the tokens each text
    kept (the long text is cut at max_seq_length, 256)."""
    from sentence_transformers import SentenceTransformer

    task = EmbeddingTask(MINILM_ID, engine="torch")
    vectors, tokens = task.embed_counted(TEXTS)
    reference = SentenceTransformer(str(minilm_source), device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    mask = reference.tokenize(TEXTS)["attention_mask"]
    assert tokens.tolist() == mask.sum(dim=1).tolist()
    assert tokens.dtype == np.int32 and tokens[-1] == 256
    np.testing.assert_allclose(task.embed(TEXTS[:2]), expected[:2], atol=1e-5)


def test_torch_engine_keeps_a_default_prompt(
    tmp_path: Path, minilm_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose config names a default prompt is embedded as encode() does: with it."""
    import json

    from sentence_transformers import SentenceTransformer

    source = tmp_path / "prompted"
    shutil.copytree(minilm_source, source)
    config = source / "config_sentence_transformers.json"
    settings = json.loads(config.read_text())
    settings.update({"prompts": {"query": "query: "}, "default_prompt_name": "query"})
    config.write_text(json.dumps(settings))
    import_model(source, "test-org/prompted-minilm", tmp_path / "home" / "hub")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))

    task = EmbeddingTask("test-org/prompted-minilm", engine="torch")
    got, _ = task.embed_counted(TEXTS[:2])
    with_prompt = SentenceTransformer(str(source), device="cpu").encode(TEXTS[:2])
    np.testing.assert_allclose(got, with_prompt, atol=1e-5)
    plain = SentenceTransformer(str(minilm_source), device="cpu").encode(TEXTS[:2])
    assert np.abs(got - plain).max() > 1e-3  # the prompt changed the vectors


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_pooled_rows_are_the_vectors_before_the_normalize_module(
    hf_home: Path, minilm_source: Path, engine: str
) -> None:
    """TEI's `normalize: false`: the vector sentence-transformers computes with the model's
    Normalize module removed, for the flagged rows of a batch only (one forward for all)."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_source), device="cpu")
    normalized = reference.encode(TEXTS, convert_to_numpy=True)
    assert type(reference[-1]).__name__ == "Normalize"
    del reference[len(reference) - 1]
    pooled = reference.encode(TEXTS, convert_to_numpy=True)
    norms = np.linalg.norm(pooled, axis=1)
    assert np.abs(norms - 1).min() > 0.1  # the pooled vectors are not unit length

    task = EmbeddingTask(MINILM_ID, engine=engine)
    assert task.engine == engine and task.normalizes
    got, tokens = task.embed_counted(TEXTS, [True] * len(TEXTS))
    np.testing.assert_allclose(got, pooled, rtol=1e-4, atol=1e-5)
    assert got.dtype == np.float32

    flags = [True, False, True, False]
    mixed, mixed_tokens = task.embed_counted(TEXTS, flags)
    plain, _ = task.embed_counted(TEXTS)
    np.testing.assert_allclose(plain, normalized, atol=1e-5)
    for row, flag in enumerate(flags):
        np.testing.assert_array_equal(mixed[row], got[row] if flag else plain[row])
    assert mixed_tokens.tolist() == tokens.tolist()
