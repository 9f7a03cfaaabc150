"""Write one Triton model entry per configured model, all linked to their task's model.py."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from frontend.core.config import ModelEntry, Settings, Task

logger = logging.getLogger(__name__)

_MARKER = ".homelab-ai"  # marks entries this module owns, so nothing else is ever removed
_KINDS = {"cpu": mc.ModelInstanceGroup.KIND_CPU, "gpu": mc.ModelInstanceGroup.KIND_GPU}


# Triton's batcher wait when a model's entry names none. Captions: the frontend sends a
# generating model's concurrent requests together (frontend.triton.cohorts), and eight
# 640x480 images (~1 MB each as pixels) take a few milliseconds to reach Triton: 2 ms split
# them into two batches, 10 ms keeps them one (a VLM answer takes hundreds of ms or more).
DEFAULT_QUEUE_DELAY_US = 2000
QUEUE_DELAY_US = {Task.IMAGE_CAPTION: 10_000}


def shipped_task_code_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "model_repository"


def task_code_dir(settings: Settings) -> Path:
    return settings.triton.task_code_dir or shipped_task_code_dir()


def build_config(template: Path, entry: ModelEntry, task: Task) -> mc.ModelConfig:
    """The task's template config.pbtxt with this model's name, batching and parameters."""
    config = text_format.Parse(template.read_text(encoding="utf-8"), mc.ModelConfig())
    config.name = entry.id
    config.max_batch_size = entry.max_batch_size
    delay = entry.max_queue_delay_us
    if delay is None:
        delay = QUEUE_DELAY_US.get(task, DEFAULT_QUEUE_DELAY_US)
    config.dynamic_batching.max_queue_delay_microseconds = delay
    del config.instance_group[:]
    group = config.instance_group.add()
    group.count = entry.instances
    # "auto" leaves KIND_AUTO: Triton picks the GPU when one is visible, else the CPU.
    group.kind = _KINDS.get(entry.device, mc.ModelInstanceGroup.KIND_AUTO)
    parameters = {
        "hf_model": entry.hf_model,
        "threads": str(entry.threads),
        "engine": entry.engine,
        "task": task,
        "num_beams": str(entry.num_beams),
        "fp16": "true" if entry.fp16 else "false",
    }
    if task == Task.IMAGE_CAPTION:  # what the caption task alone reads
        parameters["bf16"] = "true" if entry.bf16 else "false"
        parameters["quantize"] = entry.quantize
    if entry.max_new_tokens is not None:  # else the task's own default applies in the stub
        parameters["max_new_tokens"] = str(entry.max_new_tokens)
    if entry.languages:  # Tesseract's default language (requests may ask for another)
        parameters["lang"] = entry.languages[0]
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def write_repository(
    settings: Settings,
    models: Iterable[tuple[Task, ModelEntry]],
    code_dir: Path | None = None,
) -> list[str]:
    """Create or refresh entries for every enabled model of `models` (the catalog's: config.yaml
    and those added at runtime); drop the stale ones this module wrote."""
    repository = settings.triton_repository_dir
    repository.mkdir(parents=True, exist_ok=True)
    code_dir = code_dir or task_code_dir(settings)
    written: list[str] = []
    for task, entry in models:
        if not entry.enabled:
            continue
        folder = task.short  # the shipped implementation: model_repository/<short name>/
        config = build_config(shipped_task_code_dir() / folder / "config.pbtxt", entry, task)
        _write_entry(repository / entry.id, config, code_dir / folder / "1" / "model.py")
        written.append(entry.id)
    for stale in repository.iterdir():
        if stale.name not in written and (stale / _MARKER).exists():
            shutil.rmtree(stale)
            logger.info("removed Triton entry %s (no longer configured)", stale.name)
    return written


class ForeignEntryError(RuntimeError):
    """A configured model id collides with a directory this service did not create."""


def _write_entry(model_dir: Path, config: mc.ModelConfig, model_py: Path) -> None:
    if model_dir.exists() and not (model_dir / _MARKER).exists():
        raise ForeignEntryError(
            f"{model_dir} exists and was not created by homelab-ai; move it away or rename "
            f"the model id '{model_dir.name}' in config.yaml"
        )
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / _MARKER).touch()
    text = text_format.MessageToString(config)
    config_path = model_dir / "config.pbtxt"
    if not config_path.exists() or config_path.read_text(encoding="utf-8") != text:
        tmp = config_path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(config_path)
    link = version_dir / "model.py"
    if link.is_symlink() and Path(link.readlink()) == model_py:
        return
    link.unlink(missing_ok=True)
    link.symlink_to(model_py)
