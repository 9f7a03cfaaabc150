"""Torch-free embedding pipeline: parity with SentenceTransformer.encode, no torch, int8 gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frontend.models.cache import import_model, snapshot_path
from frontend.tasks.st_pipeline import UnsupportedPipeline, pool, read_spec
from tests.conftest import MINILM_ID
from tools.build_test_models import TINY_CLS_EMBEDDER, build_test_models

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["hello world", "A man is eating food.", "  Ünïcödé 🚀 日本語  ", "x " * 400, "ok"]


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory, minilm_source: Path) -> Path:
    data = tmp_path_factory.mktemp("data")
    import_model(minilm_source, MINILM_ID, data / "models" / "hub")
    build_test_models(data, only="cls-embedding")
    return data / "models"


@pytest.fixture
def hf_home(models_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HOME", str(models_home))
    return models_home


def serve_in_child(hf_home: Path, model_id: str, engine: str = "onnx") -> dict[str, object]:
    """Load and run the task in a fresh interpreter, as Triton's stub does; report its modules."""
    script = (
        "import json, sys\n"
        "from frontend.tasks.embedding import EmbeddingTask\n"
        f"task = EmbeddingTask({model_id!r}, engine={engine!r})\n"
        f"vectors = task.embed({TEXTS!r})\n"
        "heavy = sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules))\n"
        "print(json.dumps({'engine': task.engine, 'heavy': heavy, 'vectors': vectors.tolist()}))\n"
    )
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def reference(hf_home: Path, model_id: str) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    snapshot = snapshot_path(hf_home / "hub", model_id)
    model = SentenceTransformer(str(snapshot), device="cpu", local_files_only=True)
    return np.asarray(model.encode(TEXTS, batch_size=len(TEXTS)), dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize(
    ("model_id", "modes", "normalize"),
    [(MINILM_ID, ("mean",), True), (TINY_CLS_EMBEDDER, ("cls",), False)],
    ids=["mean-pooled MiniLM", "CLS-pooled tiny BERT"],
)
def test_serving_matches_sentence_transformers_without_importing_torch(
    hf_home: Path, model_id: str, modes: tuple[str, ...], normalize: bool
) -> None:
    snapshot = snapshot_path(hf_home / "hub", model_id)
    assert snapshot is not None
    spec = read_spec(snapshot)
    assert (spec.pooling_modes, spec.normalize) == (modes, normalize)

    served = serve_in_child(hf_home, model_id)

    assert served["engine"] == "onnx"
    assert served["heavy"] == []  # torch ran only in the one-off export process
    got = np.asarray(served["vectors"], dtype=np.float32)
    expected = reference(hf_home, model_id)
    assert got.shape == expected.shape
    assert cosines(got, expected).min() >= 0.99999


def test_int8_is_refused_when_the_probe_drifts(hf_home: Path) -> None:
    from frontend.tasks.embedding import EmbeddingTask

    # all-MiniLM-L6-v2 under dynamic quantization: min probe cosine ~0.97 ("ok") < 0.99
    with pytest.raises(RuntimeError, match=r"int8 embeddings differ .*probe cosine 0\.9"):
        EmbeddingTask(MINILM_ID, engine="onnx-int8")


def test_modules_that_need_torch_are_unsupported(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedPipeline, match="Dense"):
        read_spec(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps(modules[:2]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "weightedmean"}')
    with pytest.raises(UnsupportedPipeline, match="weightedmean"):
        read_spec(tmp_path)


def test_legacy_pooling_keys_and_default_prompt(tmp_path: Path) -> None:
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    pooling = {"pooling_mode_lasttoken": True, "include_prompt": False}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    settings = {"prompts": {"query": "query: "}, "default_prompt_name": "query"}
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(settings))
    spec = read_spec(tmp_path)
    assert (spec.pooling_modes, spec.prompt, spec.include_prompt) == (
        ("lasttoken",),
        "query: ",
        False,
    )


def test_pooling_picks_attended_tokens_on_either_padding_side() -> None:
    tokens = np.arange(2 * 4 * 2, dtype=np.float32).reshape(2, 4, 2)
    mask = np.array([[1, 1, 1, 0], [0, 1, 1, 1]])  # right-padded row, left-padded row
    np.testing.assert_array_equal(pool(tokens, mask, ("cls",)), [tokens[0, 0], tokens[1, 1]])
    np.testing.assert_array_equal(pool(tokens, mask, ("lasttoken",)), [tokens[0, 2], tokens[1, 3]])
    np.testing.assert_allclose(
        pool(tokens, mask, ("mean",)), [tokens[0, :3].mean(0), tokens[1, 1:].mean(0)]
    )
    np.testing.assert_array_equal(pool(tokens, mask, ("max",)), [tokens[0, 2], tokens[1, 3]])
    assert pool(tokens, mask, ("cls", "mean")).shape == (2, 4)


def test_rapidocr_stub_imports_no_torch() -> None:
    script = (
        "import sys\n"
        "from frontend.tasks.ocr import load_ocr_engine\n"
        "load_ocr_engine('rapidocr/ppocr-v4')\n"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_long_batch_hands_its_memory_back(hf_home: Path) -> None:
    """ONNX Runtime's arena keeps its peak: one batch of 32 texts at 256 tokens used to leave
    the process ~450 MiB bigger for good; runs that big now shrink the arena when they end."""
    script = (
        "import json, psutil\n"
        "from frontend.tasks.embedding import EmbeddingTask\n"
        f"task = EmbeddingTask({MINILM_ID!r}, engine='onnx')\n"
        "short = [f'sentence number {i} about foxes' for i in range(32)]\n"
        "for size in (1, 8, 32):\n"
        "    task.embed(short[:size])\n"
        "before = psutil.Process().memory_full_info().uss\n"
        "task.embed(['word ' * 300] * 32)\n"
        "after = psutil.Process().memory_full_info().uss\n"
        "print(json.dumps({'grew_mib': (after - before) / 2**20}))\n"
    )
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    grew = json.loads(result.stdout.strip().splitlines()[-1])["grew_mib"]
    assert grew < 150, f"the process kept {grew:.0f} MiB after one long batch"
