"""frontend.triton.repository: one Triton entry per configured model, from the task template."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from frontend.core.config import ModelEntry, Settings, load_settings
from frontend.models.catalog import ModelCatalog
from frontend.triton.repository import build_config, shipped_task_code_dir
from frontend.triton.repository import write_repository as write_entries

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "model_repository" / "embedding" / "config.pbtxt"
MODEL_PY = REPO_ROOT / "model_repository" / "embedding" / "1" / "model.py"


def entry(model_id: str = "minilm", **extra: Any) -> ModelEntry:
    return ModelEntry(id=model_id, hf_model="sentence-transformers/all-MiniLM-L6-v2", **extra)


def write_repository(settings: Settings) -> list[str]:
    """What the app does at start: every entry of the catalog (config.yaml's, here)."""
    return write_entries(settings, ModelCatalog(settings).all(enabled=False))


def settings_with(data_dir: Path, *models: dict[str, Any], **sections: Any) -> Settings:
    return load_settings(
        None, data_dir=data_dir, models={"text_embedding": list(models)}, **sections
    )


def read_config(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())


# --- build_config -------------------------------------------------------------------------


def test_shipped_task_code_dir_is_this_checkout() -> None:
    assert shipped_task_code_dir() == (REPO_ROOT / "model_repository").resolve()


def test_queue_delay_defaults_per_task() -> None:
    # captions arrive from the frontend as cohorts of ~1 MB requests: a longer wait keeps one
    # cohort one batch; the other tasks keep 2 ms unless the entry says otherwise
    caption = build_config(TEMPLATE, entry("vlm"), "image_caption")
    assert caption.dynamic_batching.max_queue_delay_microseconds == 10_000
    text = build_config(TEMPLATE, entry("small-embed"), "text_embedding")
    assert text.dynamic_batching.max_queue_delay_microseconds == 2000
    zero = build_config(TEMPLATE, entry("vlm", max_queue_delay_us=0), "image_caption")
    assert zero.dynamic_batching.max_queue_delay_microseconds == 0


def test_build_config_fills_in_the_entry() -> None:
    model = entry(
        "small-embed",
        threads=3,
        max_batch_size=48,
        max_queue_delay_us=750,
        instances=2,
        device="gpu",
        engine="torch",
        fp16=True,
        max_new_tokens=30,
    )

    config = build_config(TEMPLATE, model, "text_embedding")

    assert config.name == "small-embed"
    assert config.backend == "python"
    assert config.max_batch_size == 48
    assert config.dynamic_batching.max_queue_delay_microseconds == 750
    assert len(config.instance_group) == 1
    assert config.instance_group[0].count == 2
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    parameters = {k: v.string_value for k, v in config.parameters.items()}
    assert parameters == {
        "hf_model": "sentence-transformers/all-MiniLM-L6-v2",
        "threads": "3",
        "engine": "torch",
        "task": "text_embedding",
        "max_new_tokens": "30",
        "num_beams": "1",
        "fp16": "true",
    }


def test_unset_generation_length_is_left_to_the_task() -> None:
    config = build_config(TEMPLATE, entry(), "ocr")
    assert "max_new_tokens" not in config.parameters  # TrOCR's 64, caption's 30, in the stub
    assert config.parameters["num_beams"].string_value == "1"


def test_build_config_keeps_the_template_tensors() -> None:
    config = build_config(TEMPLATE, entry(), "text_embedding")

    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("TEXT", mc.TYPE_STRING, [1]),
        ("NORMALIZE", mc.TYPE_BOOL, [1]),  # optional: TEI's normalize=false asks for pooled
    ]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("EMBEDDING", mc.TYPE_FP32, [-1]),
        ("TOKENS", mc.TYPE_INT32, [1]),
    ]


@pytest.mark.parametrize(
    ("device", "kind"),
    [
        ("cpu", mc.ModelInstanceGroup.KIND_CPU),
        ("gpu", mc.ModelInstanceGroup.KIND_GPU),
        ("auto", mc.ModelInstanceGroup.KIND_AUTO),
    ],
)
def test_build_config_instance_kind(device: str, kind: int) -> None:
    config = build_config(TEMPLATE, entry(device=device, instances=3), "text_embedding")

    assert [(g.kind, g.count) for g in config.instance_group] == [(kind, 3)]


def test_build_config_defaults() -> None:
    config = build_config(TEMPLATE, entry(), "text_embedding")

    assert config.max_batch_size == 32
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.parameters["threads"].string_value == "1"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_AUTO


# --- write_repository ---------------------------------------------------------------------


def test_write_repository_creates_entries(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path / "data",
        {"id": "minilm", "hf_model": "sentence-transformers/all-MiniLM-L6-v2", "threads": 2},
        {"id": "other", "hf_model": "org/other", "device": "gpu"},
    )

    written = write_repository(settings)

    assert written == ["minilm", "other"]
    repository = tmp_path / "data" / "triton" / "repository"
    assert sorted(p.name for p in repository.iterdir()) == ["minilm", "other"]
    for name in written:
        model_dir = repository / name
        config = read_config(model_dir / "config.pbtxt")
        assert config.name == name
        link = model_dir / "1" / "model.py"
        assert link.is_symlink()
        assert link.resolve() == MODEL_PY.resolve()
        assert link.read_text(encoding="utf-8") == MODEL_PY.read_text(encoding="utf-8")
        assert (model_dir / ".homelab-ai").exists()
        assert not list(model_dir.glob("*.tmp"))
    assert read_config(repository / "minilm" / "config.pbtxt").parameters[
        "threads"
    ].string_value == ("2")
    assert read_config(repository / "other" / "config.pbtxt").instance_group[0].kind == (
        mc.ModelInstanceGroup.KIND_GPU
    )


def test_write_repository_links_to_a_configured_code_dir(tmp_path: Path) -> None:
    code_dir = tmp_path / "elsewhere" / "model_repository"
    settings = settings_with(
        tmp_path / "data",
        {"id": "minilm", "hf_model": "org/name"},
        triton={"task_code_dir": str(code_dir)},
    )

    write_repository(settings)

    link = tmp_path / "data" / "triton" / "repository" / "minilm" / "1" / "model.py"
    # As Triton will see it, which need not exist here (another container).
    assert os.readlink(link) == str(code_dir / "embedding" / "1" / "model.py")


def test_disabled_models_get_no_entry(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path / "data",
        {"id": "on", "hf_model": "org/on"},
        {"id": "off", "hf_model": "org/off", "enabled": False},
    )

    assert write_repository(settings) == ["on"]
    assert [p.name for p in settings.triton_repository_dir.iterdir()] == ["on"]


def test_every_task_links_its_own_implementation(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        models={
            "text_embedding": [{"id": "minilm", "hf_model": "org/minilm"}],
            "image_caption": [{"id": "blip", "hf_model": "Salesforce/blip"}],
            "ocr": [{"id": "rapid", "hf_model": "rapidocr/PP-OCRv4"}],
        },
    )

    assert sorted(write_repository(settings)) == ["blip", "minilm", "rapid"]
    repository = settings.triton_repository_dir
    for model_id, folder in (("minilm", "embedding"), ("blip", "caption"), ("rapid", "ocr")):
        link = repository / model_id / "1" / "model.py"
        assert link.resolve() == (shipped_task_code_dir() / folder / "1" / "model.py").resolve()
        config = (repository / model_id / "config.pbtxt").read_text()
        assert f'name: "{model_id}"' in config


def test_removed_and_disabled_models_are_deleted_but_foreign_dirs_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_repository(
        settings_with(
            data,
            {"id": "keep", "hf_model": "org/keep"},
            {"id": "removed", "hf_model": "org/removed"},
            {"id": "disabled-later", "hf_model": "org/later"},
        )
    )
    repository = data / "triton" / "repository"
    foreign = repository / "hand-made"
    (foreign / "1").mkdir(parents=True)
    (foreign / "config.pbtxt").write_text('backend: "python"\n', encoding="utf-8")
    stray_file = repository / "README.txt"
    stray_file.write_text("not a model\n", encoding="utf-8")

    written = write_repository(
        settings_with(
            data,
            {"id": "keep", "hf_model": "org/keep"},
            {"id": "disabled-later", "hf_model": "org/later", "enabled": False},
        )
    )

    assert written == ["keep"]
    assert sorted(p.name for p in repository.iterdir()) == ["README.txt", "hand-made", "keep"]
    assert (foreign / "config.pbtxt").read_text(encoding="utf-8") == 'backend: "python"\n'
    assert stray_file.read_text(encoding="utf-8") == "not a model\n"


def test_rewrite_without_changes_leaves_files_alone(tmp_path: Path) -> None:
    settings = settings_with(tmp_path / "data", {"id": "minilm", "hf_model": "org/name"})
    write_repository(settings)
    model_dir = settings.triton_repository_dir / "minilm"
    config_path = model_dir / "config.pbtxt"
    link = model_dir / "1" / "model.py"
    # Backdate, so an unnecessary rewrite would show even on coarse-mtime filesystems.
    os.utime(config_path, ns=(1_000_000_000, 1_000_000_000))
    config_stat = config_path.stat()
    link_stat = link.lstat()

    assert write_repository(settings) == ["minilm"]

    assert config_path.stat().st_mtime_ns == 1_000_000_000
    assert config_path.stat().st_ino == config_stat.st_ino
    assert link.lstat().st_ino == link_stat.st_ino
    assert link.lstat().st_mtime_ns == link_stat.st_mtime_ns


def test_changed_entry_rewrites_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_repository(settings_with(data, {"id": "minilm", "hf_model": "org/name"}))
    config_path = data / "triton" / "repository" / "minilm" / "config.pbtxt"

    write_repository(
        settings_with(data, {"id": "minilm", "hf_model": "org/name", "max_batch_size": 8})
    )

    assert read_config(config_path).max_batch_size == 8


def test_moved_code_dir_relinks_model_py(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_repository(settings_with(data, {"id": "minilm", "hf_model": "org/name"}))
    link = data / "triton" / "repository" / "minilm" / "1" / "model.py"
    assert link.resolve() == MODEL_PY.resolve()

    new_code = tmp_path / "code"
    write_repository(
        settings_with(
            data, {"id": "minilm", "hf_model": "org/name"}, triton={"task_code_dir": str(new_code)}
        )
    )

    assert os.readlink(link) == str(new_code / "embedding" / "1" / "model.py")
