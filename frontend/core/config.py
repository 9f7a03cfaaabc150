"""Typed settings: config.yaml plus HOMELAB_* environment overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Triton model names and config ids: safe as a directory name and in a URL path segment.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Hugging Face repo ids: "org/name" (or a bare "name" for legacy canonical models).
HF_ID_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"
)

TASKS = ("text_embedding", "image_caption", "ocr")
Task = Literal["text_embedding", "image_caption", "ocr"]


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Section):
    id: str
    hf_model: str
    enabled: bool = True
    default: bool = False
    dimensions: int | None = Field(default=None, gt=0)
    threads: int = Field(default=1, ge=1, le=256)
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    max_queue_delay_us: int = Field(default=2000, ge=0, le=1_000_000)
    instances: int = Field(default=1, ge=1, le=16)
    device: Literal["auto", "cpu", "gpu"] = "auto"
    engine: Literal["auto", "torch", "onnx"] = "auto"
    fp16: bool = False  # half precision on a GPU (ignored on the CPU)
    keep_alive_seconds: float | None = Field(default=None, ge=0)
    pinned: bool = False  # never unloaded for idleness or evicted
    # generation defaults for caption and HF OCR models (requests may lower or raise them
    # within limits.max_new_tokens / limits.max_num_beams)
    max_new_tokens: int = Field(default=30, ge=1, le=1024)
    num_beams: int = Field(default=1, ge=1, le=16)

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


class ModelsSection(_Section):
    text_embedding: list[ModelEntry] = Field(default_factory=list)
    image_caption: list[ModelEntry] = Field(default_factory=list)
    ocr: list[ModelEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_unique_and_defaults(self) -> ModelsSection:
        seen: set[str] = set()
        for task in TASKS:
            entries: list[ModelEntry] = getattr(self, task)
            for entry in entries:
                if entry.id in seen:
                    raise ValueError(f"model id '{entry.id}' is used more than once")
                seen.add(entry.id)
            if sum(1 for e in entries if e.default) > 1:
                raise ValueError(f"{task}: more than one model has default: true")
        return self

    def entries(self, task: Task) -> list[ModelEntry]:
        return list(getattr(self, task))


class TritonSection(_Section):
    # One external Triton (host:port), several (a YAML list, or "a:8001,b:8001" in the
    # environment: requests are spread over them), or None for the embedded server.
    url: str | list[str] | None = None
    http_port: int = Field(default=0, ge=0, le=65535)
    grpc_port: int = Field(default=0, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    startup_timeout_seconds: float = Field(default=60, gt=0)
    load_timeout_seconds: float = Field(default=300, gt=0)
    inference_timeout_seconds: float = Field(default=120, gt=0)
    task_code_dir: Path | None = None
    log_verbose: int = Field(default=0, ge=0, le=3)

    @field_validator("url", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str) and "," in value:
            return [part.strip() for part in value.split(",")]
        return value

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        items = [value] if isinstance(value, str) else value or []
        if value is not None and not items:
            raise ValueError("needs at least one Triton address (host:port)")
        for item in items:
            if not item or any(char.isspace() for char in item):
                raise ValueError("a Triton address must be host:port, without spaces")
        if len(set(items)) != len(items):
            raise ValueError("a Triton address is listed more than once")
        return value

    @property
    def urls(self) -> list[str]:
        """Every external Triton address; empty for the embedded server."""
        if self.url is None:
            return []
        return [self.url] if isinstance(self.url, str) else list(self.url)

    @field_validator("task_code_dir")
    @classmethod
    def _check_absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path (as Triton sees it)")
        return value


class LimitsSection(_Section):
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_texts_per_request: int = Field(default=256, ge=1, le=100_000)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_images_per_request: int = Field(default=16, ge=1, le=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_image_side: int = Field(default=16_384, ge=1)
    max_new_tokens: int = Field(default=128, ge=1)
    max_num_beams: int = Field(default=8, ge=1)


class ResourcesSection(_Section):
    max_gpu_memory_gb: float = Field(default=8, gt=0)
    max_host_memory_gb: float | None = Field(default=None, gt=0)
    max_concurrent_requests: int = Field(default=4, ge=1)
    model_keep_alive_minutes: float = Field(default=30, ge=0)
    ocr_keep_alive_seconds: float = Field(default=5, ge=0)
    max_keep_alive_seconds: float = Field(default=86_400, ge=0)


class ApiKey(_Section):
    key_hash: str
    name: str

    @field_validator("key_hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be the sha256 hex digest of the key (64 lowercase hex digits)")
        return value


class SecuritySection(_Section):
    auth_enabled: bool = False
    api_keys: list[ApiKey] = Field(default_factory=list)
    ip_allowlist: list[str] = Field(default_factory=list)


class HubSection(_Section):
    """Where models are downloaded from (POST /api/models/download)."""

    endpoint: str | None = None  # None: $HF_ENDPOINT, else https://huggingface.co
    etag_timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_concurrent_downloads: int = Field(default=2, ge=1, le=16)


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


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
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    security: SecuritySection = Field(default_factory=SecuritySection)
    hub: HubSection = Field(default_factory=HubSection)

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
