"""Typed settings: config.yaml plus HOMELAB_* environment overrides."""

from __future__ import annotations

import ipaddress
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
}
# Path words of the model API (task filters, downloads): never a model's config id.
RESERVED_MODEL_IDS = frozenset(
    {*(t.value for t in Task), *(t.short for t in Task), "download", "downloads"}
)


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
    engine: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    fp16: bool = False  # half precision on a GPU (ignored on the CPU)
    keep_alive_seconds: float | None = Field(default=None, ge=0)
    pinned: bool = False  # never unloaded for idleness or evicted
    # generation defaults for caption and HF OCR models (requests may lower or raise them
    # within limits.max_new_tokens / limits.max_num_beams)
    # None: the task's own default (caption 30, OCR 64)
    max_new_tokens: int | None = Field(default=None, ge=1, le=1024)
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
    rerank: list[ModelEntry] = Field(default_factory=list)

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
    # Secret for Triton's model-repository API (load/unload), sent as the `admin-key` header.
    # Embedded mode: a random one per start when unset. External Triton: the value given to
    # its --grpc-restricted-protocol / --http-restricted-api flags.
    admin_key: str | None = Field(default=None, min_length=16, max_length=256)

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
    max_rerank_documents: int = Field(default=1000, ge=1, le=100_000)
    max_images_per_request: int = Field(default=16, ge=1, le=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_image_side: int = Field(default=16_384, ge=1)
    max_new_tokens: int = Field(default=128, ge=1)
    max_num_beams: int = Field(default=8, ge=1)


class ResourcesSection(_Section):
    max_gpu_memory_gb: float = Field(default=8, gt=0)
    max_host_memory_gb: float | None = Field(default=None, gt=0)
    max_concurrent_requests: int = Field(default=64, ge=1)  # inference requests in flight
    queue_timeout_seconds: float = Field(default=30, ge=0)  # wait for a slot, then 503
    keep_alive_seconds: float = Field(default=1800, ge=0)  # idle time before an unload
    ocr_keep_alive_seconds: float = Field(default=5, ge=0)  # OCR: release memory quickly
    max_keep_alive_seconds: float = Field(default=86_400, ge=0)
    # A model whose process dies is restarted; after this many restarts within the window
    # it is marked failed until an operator loads it again.
    model_max_restarts: int = Field(default=5, ge=0, le=1000)
    model_restart_window_seconds: float = Field(default=300, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _old_keep_alive_name(cls, data: Any) -> Any:
        # Before keep-alive was in seconds everywhere: model_keep_alive_minutes (still read).
        if isinstance(data, dict) and "model_keep_alive_minutes" in data:
            data = dict(data)
            minutes = data.pop("model_keep_alive_minutes")
            if "keep_alive_seconds" not in data:
                try:
                    data["keep_alive_seconds"] = float(minutes) * 60
                except (TypeError, ValueError):
                    raise ValueError("model_keep_alive_minutes must be a number") from None
        return data


class ApiKey(_Section):
    key_hash: str
    name: str = Field(min_length=1, max_length=100)
    rate_limit: str | None = None  # this key's limit, else security.rate_limit.per_key
    revoked: bool = False  # kept for the record, refused like an unknown key

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        return _check_rate_limit(value) if value is not None else None

    @field_validator("key_hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be the sha256 hex digest of the key (64 lowercase hex digits)")
        return value


def _check_rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError("must be a rate such as '60/minute' or '10/second;1000/day'") from None
    return value


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"'{value[:60]}' is not an IP address or CIDR network") from None
    return values


class RateLimitSection(_Section):
    enabled: bool = True
    per_key: str | None = "3000/minute"  # each API key's limit (a key's own rate_limit wins)
    per_ip: str | None = None  # each client address, for requests without a key; None: none
    storage_uri: str = "memory://"  # memory:// (one frontend) or redis://host:6379/0 (shared)

    @field_validator("per_key", "per_ip")
    @classmethod
    def _check_rates(cls, value: str | None) -> str | None:
        return _check_rate_limit(value) if value is not None else None

    @field_validator("storage_uri")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+sentinel://")):
            raise ValueError("must be memory:// or a redis:// URI")
        return value


class SecuritySection(_Section):
    # None: on as soon as api_keys lists a key. false: no keys asked (loopback only, see below)
    auth_enabled: bool | None = None
    api_keys: list[ApiKey] = Field(default_factory=list)
    allow_localhost_unauthenticated: bool = False  # requests from 127.0.0.1/::1 need no key
    ip_allowlist: list[str] = Field(default_factory=list)  # CIDRs; empty: every address
    trusted_proxies: list[str] = Field(default_factory=list)  # whose X-Forwarded-For counts
    metrics_require_auth: bool = False  # /metrics behind the API keys too
    # Serving a non-loopback address with auth off must be asked for explicitly.
    allow_unauthenticated_remote: bool = False
    rate_limit: RateLimitSection = Field(default_factory=RateLimitSection)

    @field_validator("ip_allowlist", "trusted_proxies")
    @classmethod
    def _check_cidrs(cls, values: list[str]) -> list[str]:
        return _check_networks(values)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys) if self.auth_enabled is None else self.auth_enabled

    @model_validator(mode="after")
    def _check_keys(self) -> SecuritySection:
        hashes = [key.key_hash for key in self.api_keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: the same key_hash is listed twice")
        usable = [key for key in self.api_keys if not key.revoked]
        if self.auth_enabled and not usable and not self.allow_localhost_unauthenticated:
            raise ValueError(
                "auth_enabled is true but api_keys has no usable key: nobody could call the API"
            )
        return self


class HubSection(_Section):
    """Where models are downloaded from (POST /api/models/download)."""

    endpoint: str | None = None  # None: $HF_ENDPOINT, else https://huggingface.co
    etag_timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_concurrent_downloads: int = Field(default=2, ge=1, le=16)


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)


class CrawlSection(_Section):
    chromium_path: Path | None = None  # None: Debian's chromium if installed, else Playwright's
    max_concurrent: int = Field(default=2, ge=1, le=64)
    max_queued: int = Field(default=16, ge=0, le=10_000)
    default_timeout_ms: int = Field(default=15_000, ge=100)
    max_timeout_ms: int = Field(default=60_000, ge=100, le=600_000)
    js_wait_ms: int = Field(default=5_000, ge=0, le=600_000)
    idle_close_seconds: float = Field(default=300, gt=0)
    launch_timeout_seconds: float = Field(default=30, gt=0)
    viewport_width: int = Field(default=1280, ge=100, le=8192)
    viewport_height: int = Field(default=800, ge=100, le=8192)
    max_screenshot_height: int = Field(default=10_000, ge=100, le=32_000)
    max_html_chars: int = Field(default=2_000_000, ge=10_000)
    max_text_chars: int = Field(default=100_000, ge=1_000)
    max_links: int = Field(default=1_000, ge=0, le=100_000)
    max_transfer_mb: float = Field(default=50, gt=0)
    min_extracted_chars: int = Field(default=200, ge=0)
    user_agent: str | None = None
    ignore_tls_errors: bool = False
    allow_private_networks: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(entry):
                    raise ValueError(
                        f"'{entry[:100]}' is not a host name, IP address or CIDR"
                    ) from None
        return value

    @model_validator(mode="after")
    def _check_timeouts(self) -> CrawlSection:
        if self.default_timeout_ms > self.max_timeout_ms:
            raise ValueError("default_timeout_ms is larger than max_timeout_ms")
        return self


_ALLOWED_HOST = re.compile(r"^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*$")


def _normalise_allowed_host(entry: str) -> str:
    value = entry.strip().lower().rstrip(".")
    if value == "*":
        return value
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if len(value) > 253 or not _ALLOWED_HOST.fullmatch(value):
        raise ValueError(f"'{entry[:100]}' is not a host name, '*.domain', an IP address or '*'")
    return value


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # SIGTERM: refuse new work, let running requests finish for this long, then stop
    drain_timeout_seconds: float = Field(default=30, ge=0, le=3600)
    # Host header names the API answers to besides localhost, loopback IPs and `host` (see
    # core.hosts). NoDecode: the environment gives "a,b" (a JSON list works too).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: list[str]) -> list[str]:
        return [_normalise_allowed_host(entry) for entry in value]


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
    crawl: CrawlSection = Field(default_factory=CrawlSection)

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
