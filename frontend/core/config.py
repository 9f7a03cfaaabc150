"""Typed settings: config.yaml plus HOMELAB_* environment overrides."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from frontend.core.config_sections import (
    CacheSection,
    CrawlSection,
    DocumentsSection,
    HubSection,
    JobsSection,
    LimitsSection,
    OcrSection,
    ResourcesSection,
    Section,
    ServerSection,
    TritonSection,
)
from frontend.core.config_security import ApiKey, RateLimitSection, SecuritySection
from frontend.tasks.ocr_languages import normalise

# The sections live in config_sections / config_security; their names are imported from here.
__all__ = [
    "HF_ID_PATTERN",
    "MODEL_ID_PATTERN",
    "RESERVED_MODEL_IDS",
    "ApiKey",
    "CacheSection",
    "ConfigError",
    "CrawlSection",
    "DocumentsSection",
    "HubSection",
    "JobsSection",
    "LimitsSection",
    "ModelEntry",
    "ModelsSection",
    "OcrSection",
    "RateLimitSection",
    "ResourcesSection",
    "SecuritySection",
    "ServerSection",
    "Settings",
    "Task",
    "TritonSection",
    "load_settings",
]

# Triton model names and config ids: safe as a directory name and in a URL path segment.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Hugging Face repo ids: "org/name" (or a bare "name" for legacy canonical models).
HF_ID_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"
)


class Task(StrEnum):
    """A model task. The value names its config.yaml section; `short` is the word the
    manifest and the model API use ("embedding", "caption", "ocr", "rerank")."""

    TEXT_EMBEDDING = "text_embedding"
    IMAGE_CAPTION = "image_caption"
    OCR = "ocr"
    RERANK = "rerank"
    IMAGE_EMBEDDING = "image_embedding"  # images and texts in one space (CLIP, SigLIP, faces)

    @property
    def short(self) -> str:
        return _SHORT_NAMES[self]

    @classmethod
    def parse(cls, name: str) -> Task | None:
        """The task a config name or a short name stands for; None for any other word."""
        return next((t for t in cls if name in (t.value, t.short)), None)


_SHORT_NAMES = {
    Task.TEXT_EMBEDDING: "embedding",
    Task.IMAGE_CAPTION: "caption",
    Task.OCR: "ocr",
    Task.RERANK: "rerank",
    Task.IMAGE_EMBEDDING: "image_embedding",
}
# Path words of the model API (task filters, downloads): never a model's config id.
RESERVED_MODEL_IDS = frozenset(
    {*(t.value for t in Task), *(t.short for t in Task), "download", "downloads"}
)


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class ModelEntry(Section):
    id: str
    hf_model: str
    enabled: bool = True
    default: bool = False
    dimensions: int | None = Field(default=None, gt=0)
    threads: int = Field(default=1, ge=1, le=256)
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    # None: the task's default (frontend.triton.repository.QUEUE_DELAY_US)
    max_queue_delay_us: int | None = Field(default=None, ge=0, le=1_000_000)
    instances: int = Field(default=1, ge=1, le=16)
    device: Literal["auto", "cpu", "gpu"] = "auto"
    engine: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    fp16: bool = False  # half precision on a GPU (ignored on the CPU)
    bf16: bool = False  # caption: bfloat16 on a GPU (ignored on the CPU)
    # caption: 8-bit or 4-bit weights through bitsandbytes, GPU only (a 7B VLM in ~5 GB)
    quantize: Literal["none", "8bit", "4bit"] = "none"
    keep_alive_seconds: float | None = Field(default=None, ge=0)
    pinned: bool = False  # never unloaded for idleness or evicted
    # generation defaults for caption and HF OCR models (requests may lower or raise them
    # within limits.max_new_tokens / limits.max_num_beams)
    # None: the task's own default (caption 30, OCR 64)
    max_new_tokens: int | None = Field(default=None, ge=1, le=1024)
    num_beams: int = Field(default=1, ge=1, le=16)
    # OCR: the languages the model offers (Tesseract codes or ISO 639-1: eng, deu, de), the
    # first being what it reads when a request names none. None: the engine's own (RapidOCR:
    # chi_sim, eng; Tesseract: every installed traineddata, English first; HF: undeclared).
    languages: list[str] | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        codes = [normalise(code) for code in value]  # ValueError names an unknown code
        return list(dict.fromkeys(codes))

    @model_validator(mode="after")
    def _check_precision(self) -> ModelEntry:
        if self.fp16 and self.bf16:
            raise ValueError("choose fp16 or bf16, not both")
        if self.quantize != "none" and self.device == "cpu":
            raise ValueError(f"quantize: {self.quantize} weights need a GPU (device is cpu)")
        return self

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not MODEL_ID_PATTERN.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("hf_model")
    @classmethod
    def _check_hf_model(cls, value: str) -> str:
        if not HF_ID_PATTERN.fullmatch(value) or ".." in value:
            raise ValueError("must be a Hugging Face model id such as 'org/name'")
        return value


class ModelsSection(Section):
    text_embedding: list[ModelEntry] = Field(default_factory=list)
    image_caption: list[ModelEntry] = Field(default_factory=list)
    ocr: list[ModelEntry] = Field(default_factory=list)
    rerank: list[ModelEntry] = Field(default_factory=list)
    image_embedding: list[ModelEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_unique_and_defaults(self) -> ModelsSection:
        seen: set[str] = set()
        for task in Task:
            entries: list[ModelEntry] = getattr(self, task)
            for entry in entries:
                if entry.id in seen:
                    raise ValueError(f"model id '{entry.id}' is used more than once")
                if entry.id in RESERVED_MODEL_IDS:
                    raise ValueError(
                        f"model id '{entry.id}' is reserved (GET /api/models/{entry.id} lists "
                        "a task); choose another id"
                    )
                seen.add(entry.id)
            if sum(1 for e in entries if e.default) > 1:
                raise ValueError(f"{task}: more than one model has default: true")
        return self

    def entries(self, task: Task) -> list[ModelEntry]:
        return list(getattr(self, task))


class Settings(BaseSettings):
    """Everything configurable. Precedence: HOMELAB_* env > config.yaml values > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="HOMELAB_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSection = Field(default_factory=ServerSection)
    triton: TritonSection = Field(default_factory=TritonSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    ocr: OcrSection = Field(default_factory=OcrSection)
    documents: DocumentsSection = Field(default_factory=DocumentsSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    security: SecuritySection = Field(default_factory=SecuritySection)
    hub: HubSection = Field(default_factory=HubSection)
    crawl: CrawlSection = Field(default_factory=CrawlSection)
    cache: CacheSection = Field(default_factory=CacheSection)
    jobs: JobsSection = Field(default_factory=JobsSection)

    @model_validator(mode="after")
    def _check_quantized_models_have_a_gpu(self) -> Settings:
        if self.triton.url is not None:  # an external Triton: its GPUs are not visible here
            return self
        for task in Task:
            for index, entry in enumerate(self.models.entries(task)):
                if entry.quantize == "none" or not entry.enabled:
                    continue
                key = f"models.{task}[{index}] ({entry.id}).quantize"
                if task is not Task.IMAGE_CAPTION:
                    raise ValueError(f"{key}: only image_caption models can be quantized")
                from frontend.models.gpu import gpu_available  # NVML, asked only when needed

                if not gpu_available():
                    raise ValueError(
                        f"{key}: {entry.quantize} weights (bitsandbytes) need an NVIDIA GPU "
                        "and this host has none; use quantize: none"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values passed to the constructor come from config.yaml; the environment overrides them.
        return (env_settings, init_settings)

    @property
    def models_dir(self) -> Path:
        """HF_HOME: the Hugging Face cache lives under models_dir/hub."""
        return self.data_dir / "models"

    @property
    def triton_repository_dir(self) -> Path:
        """Per-model Triton entries generated from the configuration."""
        return self.data_dir / "triton" / "repository"


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in err.errors()[:20]:
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read config.yaml (if given), apply env overrides, validate; ConfigError names the key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must contain a mapping at the top level")
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None
