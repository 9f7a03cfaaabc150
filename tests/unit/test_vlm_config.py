"""Vision-language models in config and manifest: quantize/bf16 keys reach the caption task's
Triton entry and are refused where they cannot run; Ollama's names find manifest models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontend.core.config import ConfigError, ModelEntry, Task, load_settings
from frontend.models import gpu
from frontend.models.catalog import ModelCatalog
from frontend.models.manifest import load_manifest, parse_manifest
from frontend.triton.repository import build_config, shipped_task_code_dir

CAPTION_TEMPLATE = shipped_task_code_dir() / "caption" / "config.pbtxt"


def captions(tmp_path: Path, *models: dict[str, Any], **sections: Any) -> Any:
    return load_settings(
        None, data_dir=tmp_path, models={"image_caption": list(models)}, **sections
    )


def test_quantize_and_bf16_reach_the_caption_model() -> None:
    entry = ModelEntry(id="qwen", hf_model="Qwen/Qwen2.5-VL-3B-Instruct", quantize="4bit")
    parameters = build_config(CAPTION_TEMPLATE, entry, Task.IMAGE_CAPTION).parameters
    assert parameters["quantize"].string_value == "4bit"
    assert parameters["bf16"].string_value == "false"
    bf16 = ModelEntry(id="qwen", hf_model="Qwen/Qwen2.5-VL-3B-Instruct", bf16=True)
    parameters = build_config(CAPTION_TEMPLATE, bf16, Task.IMAGE_CAPTION).parameters
    assert parameters["bf16"].string_value == "true"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"quantize": "3bit"}, "quantize"),
        ({"quantize": "8bit", "device": "cpu"}, "need a GPU"),
        ({"fp16": True, "bf16": True}, "fp16 or bf16"),
    ],
)
def test_bad_precision_settings_name_the_key(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        captions(tmp_path, {"id": "vlm", "hf_model": "llava-hf/llava-1.5-7b-hf", **extra})
    assert "models.image_caption.0" in str(caught.value)


def test_quantized_model_is_refused_on_a_host_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "gpu_available", lambda: False)
    model = {"id": "llava", "hf_model": "llava-hf/llava-1.5-7b-hf", "quantize": "4bit"}
    with pytest.raises(ConfigError, match=r"image_caption\[0\] \(llava\)\.quantize.*no"):
        captions(tmp_path, model)
    # disabled, or served by an external Triton (whose GPUs this host cannot see): accepted
    assert captions(tmp_path, {**model, "enabled": False})
    assert captions(tmp_path, model, triton={"url": "triton:8001"})
    monkeypatch.setattr(gpu, "gpu_available", lambda: True)
    assert captions(tmp_path, model).models.image_caption[0].quantize == "4bit"


def test_only_caption_models_are_quantized(tmp_path: Path) -> None:
    embedder = {"id": "e", "hf_model": "BAAI/bge-m3", "quantize": "8bit"}
    with pytest.raises(ConfigError, match="only image_caption"):
        load_settings(None, data_dir=tmp_path, models={"text_embedding": [embedder]})


def test_manifest_lists_todays_vlms_with_size_memory_and_ollama_names() -> None:
    manifest = load_manifest()
    for name, hf_id in [
        ("llava", "llava-hf/llava-1.5-7b-hf"),
        ("llava:latest", "llava-hf/llava-1.5-7b-hf"),
        ("llava:7b", "llava-hf/llava-1.5-7b-hf"),
        ("qwen2.5vl:3b", "Qwen/Qwen2.5-VL-3B-Instruct"),
        ("qwen2.5vl:7b", "Qwen/Qwen2.5-VL-7B-Instruct"),
        ("gemma3:4b", "google/gemma-3-4b-it"),
        ("smolvlm", "HuggingFaceTB/SmolVLM-Instruct"),
    ]:
        listed = manifest.by_ollama_name(name)
        assert listed is not None and listed.id == hf_id, name
    assert manifest.by_ollama_name("qwen2.5vl:72b") is None
    for entry in manifest.entries("caption"):
        assert entry.size_mb > 0 and entry.memory_mb is not None and entry.memory_mb > 0
    ids = {entry.id for entry in manifest.entries("caption")}
    assert {"florence-community/Florence-2-base", "HuggingFaceTB/SmolVLM-256M-Instruct"} <= ids


def test_ollama_names_are_for_caption_models_only() -> None:
    bad = {"embedding": [{"id": "a/b", "name": "n", "team": "t", "size_mb": 1, "dimensions": 4}]}
    bad["embedding"][0]["ollama"] = ["b"]
    with pytest.raises(ValueError, match="only listed for caption"):
        parse_manifest(bad)


def test_an_ollama_name_finds_the_model_enabled_by_its_hf_id(tmp_path: Path) -> None:
    settings = captions(
        tmp_path,
        {"id": "qwen-small", "hf_model": "Qwen/Qwen2.5-VL-3B-Instruct"},
        {"id": "blip", "hf_model": "Salesforce/blip-image-captioning-base", "default": True},
    )
    catalog = ModelCatalog(settings)
    assert catalog.lookup("qwen2.5vl:3b", Task.IMAGE_CAPTION).id == "qwen-small"
    assert catalog.lookup("qwen2.5vl:3b:latest", None).id == "qwen-small"
    assert catalog.find("qwen2.5vl:7b", Task.IMAGE_CAPTION) is None  # not configured here
    assert catalog.find("llava", Task.IMAGE_CAPTION) is None
