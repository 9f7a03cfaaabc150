"""The plain config.yaml sections: server, triton, limits, documents, resources, hub, crawl and
cache."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode


class Section(BaseModel):
    """A config.yaml section: unknown keys are errors (a typo never goes unnoticed)."""

    model_config = ConfigDict(extra="forbid")


class TritonSection(Section):
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


class LimitsSection(Section):
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_texts_per_request: int = Field(default=256, ge=1, le=100_000)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_rerank_documents: int = Field(default=1000, ge=1, le=100_000)
    max_images_per_request: int = Field(default=16, ge=1, le=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_image_side: int = Field(default=16_384, ge=1)
    max_new_tokens: int = Field(default=128, ge=1)
    max_num_beams: int = Field(default=8, ge=1)
    max_document_pages: int = Field(default=50, ge=1, le=10_000)  # PDF/TIFF pages per request


class OcrSection(Section):
    """Documents (PDF, multi-page TIFF) sent to POST /api/ocr."""

    pdf_dpi: int = Field(default=200, ge=36, le=1200)  # render resolution unless `dpi` is sent
    max_pdf_dpi: int = Field(default=600, ge=36, le=1200)  # highest `dpi` a request may ask for

    @model_validator(mode="after")
    def _default_within_max(self) -> OcrSection:
        if self.pdf_dpi > self.max_pdf_dpi:
            raise ValueError("pdf_dpi must not exceed max_pdf_dpi")
        return self


class DocumentsSection(Section):
    """The sandbox that parses uploaded files (PDF, Office, TIFF, images): worker processes
    whose memory, CPU time and wall time are capped, so a parser bomb costs at most these."""

    workers: int | None = Field(default=None, ge=1, le=64)  # None: one per core, 2 to 8
    memory_mib: int = Field(default=1024, ge=256)  # address space per worker (RLIMIT_AS)
    cpu_seconds: int = Field(default=30, ge=1)  # CPU per parsing step (RLIMIT_CPU)
    timeout_seconds: float = Field(default=60, gt=0)  # wall time per parsing step
    queue_timeout_seconds: float = Field(default=30, ge=0)  # wait for a worker, then 503
    max_tasks_per_worker: int = Field(default=200, ge=1)  # then the worker is replaced

    @property
    def pool_size(self) -> int:
        return self.workers or min(8, max(2, os.cpu_count() or 1))


class ResourcesSection(Section):
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


class HubSection(Section):
    """Where models are downloaded from (POST /api/models/download)."""

    endpoint: str | None = None  # None: $HF_ENDPOINT, else https://huggingface.co
    etag_timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_concurrent_downloads: int = Field(default=2, ge=1, le=16)


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)


# A current desktop Chrome's User-Agent (headless Chromium's own says "HeadlessChrome", which
# many sites answer with a block page).
CHROME_VERSION = "156.0.0.0"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/{CHROME_VERSION} Safari/537.36"
)


def crawl_slots() -> int:
    """Crawls at once unless configured: one per CPU core this process may use (2 to 8); a
    crawl is mostly Chromium's CPU time, so more slots than cores only lengthen each crawl."""
    return min(8, max(2, len(os.sched_getaffinity(0))))


class CrawlSection(Section):
    chromium_path: Path | None = None  # None: Debian's chromium if installed, else Playwright's
    max_concurrent: int = Field(default_factory=crawl_slots, ge=1, le=64)  # null: crawl_slots()
    max_queued: int = Field(default=16, ge=0, le=10_000)
    # Fresh contexts (each with its proxy listener and a blank page) made ahead of the crawls
    # that take them; 0: every crawl makes its own when it starts.
    warm_contexts: int = Field(default=2, ge=0, le=64)
    default_timeout_ms: int = Field(default=15_000, ge=100)
    max_timeout_ms: int = Field(default=60_000, ge=100, le=600_000)
    js_wait_ms: int = Field(default=5_000, ge=0, le=600_000)
    idle_close_seconds: float = Field(default=300, gt=0)
    launch_timeout_seconds: float = Field(default=30, gt=0)
    viewport_width: int = Field(default=1280, ge=100, le=8192)
    viewport_height: int = Field(default=800, ge=100, le=8192)
    max_screenshot_height: int = Field(default=10_000, ge=100, le=32_000)
    # Against absurd pages only: a normal long page (a 2 MB article) comes back whole. Text
    # extraction of a page near the ceiling takes tens of seconds and a few hundred MB.
    max_html_chars: int = Field(default=10_000_000, ge=10_000)
    max_text_chars: int = Field(default=10_000_000, ge=1_000)
    max_links: int = Field(default=1_000, ge=0, le=100_000)
    max_transfer_mb: float = Field(default=50, gt=0)
    min_extracted_chars: int = Field(default=200, ge=0)
    # None: Chromium's own ("HeadlessChrome", as before this default existed)
    user_agent: str | None = Field(default=DEFAULT_USER_AGENT, min_length=1, max_length=512)
    ignore_tls_errors: bool = False
    # Site crawls (POST /api/crawl/site) and maps (POST /api/crawl/map, /v2/map)
    max_site_pages: int = Field(default=1_000, ge=1, le=100_000)
    max_site_seconds: float = Field(default=1_800, gt=0, le=86_400)
    robots_user_agent: str = Field(default="HomelabAI", min_length=1, max_length=100)
    site_host_concurrency: int = Field(default=2, ge=1, le=64)
    site_host_delay_ms: int = Field(default=0, ge=0, le=60_000)
    max_crawl_delay_ms: int = Field(default=10_000, ge=0, le=600_000)
    max_sitemap_urls: int = Field(default=50_000, ge=0, le=1_000_000)
    max_sitemaps: int = Field(default=20, ge=0, le=1_000)
    max_map_urls: int = Field(default=5_000, ge=1, le=100_000)
    max_batch_urls: int = Field(default=1_000, ge=1, le=100_000)  # POST /api/crawl/batch
    allow_private_networks: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)

    @property
    def fetch_user_agent(self) -> str:
        """The User-Agent of robots.txt and sitemap fetches (never empty)."""
        return self.user_agent or DEFAULT_USER_AGENT

    @field_validator("max_concurrent", mode="before")
    @classmethod
    def _default_slots(cls, value: object) -> object:
        return crawl_slots() if value is None else value

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


class CacheSection(Section):
    """The result cache (frontend.cache): embeddings per text, captions and OCR per image."""

    enabled: bool = True
    # memory:// keeps results in this process (bounded by max_bytes); redis://host:6379/0
    # shares them between frontends (Redis's own maxmemory policy bounds it there).
    storage_uri: str = "memory://"
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)  # memory:// only
    ttl_seconds: float = Field(default=7 * 86_400, gt=0)  # an entry's lifetime
    # Redis slower than this counts as down: the request is served without the cache.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=30)

    @field_validator("storage_uri")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must be memory:// or a redis:// URI")
        return value


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


class ServerSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # SIGTERM: refuse new work, let running requests finish for this long, then stop
    drain_timeout_seconds: float = Field(default=30, ge=0, le=3600)
    # Host header names the API answers to besides localhost, loopback IPs and `host` (see
    # core.hosts). NoDecode: the environment gives "a,b" (a JSON list works too).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Web pages allowed to call the API from a browser (CORS): origins such as
    # "https://app.example.com", or "*" for any. Empty: no CORS headers (browsers refuse).
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_hosts", "cors_allow_origins", mode="before")
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

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        origins = [entry.strip().rstrip("/") for entry in value if entry.strip()]
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(
                    f"cors_allow_origins: {origin[:100]!r} is not an origin like "
                    "https://app.example.com (scheme and host, no path) or '*'"
                )
        return origins


class JobsSection(Section):
    """Async jobs (docs: Jobs): the huey broker, its in-process workers, results, webhooks."""

    enabled: bool = True
    # None: SQLite files under <data_dir>/jobs/ (no server). "redis://host:6379/0": Redis,
    # shared by several frontends and `homelab-ai worker` processes on other machines.
    broker: str | None = None
    workers: int = Field(default=2, ge=0, le=64)  # threads in this process; 0: only enqueue
    lease_seconds: float = Field(default=30, ge=0.5, le=3600)  # a running job's heartbeat lease
    poll_seconds: float = Field(default=0.25, gt=0, le=10)  # idle workers' longest queue poll
    result_ttl_seconds: float = Field(default=86_400, gt=0)  # finished jobs are kept this long
    max_result_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_jobs_listed: int = Field(default=100, ge=1, le=10_000)  # page size cap of GET /api/jobs
    # Page size cap of a streaming job's items (GET /api/jobs/{id}/items, Firecrawl's
    # GET /v2/crawl/{id} and /v2/batch/scrape/{id}: their `next` links the following page).
    items_page_size: int = Field(default=100, ge=1, le=10_000)
    # Webhooks: HMAC-SHA256 of the body with this secret in X-Homelab-Signature (a key's own
    # webhook_secret wins); without any secret, jobs that name a webhook are refused.
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=256)
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=2, ge=0, le=600)  # doubles per attempt
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=120)

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL (or unset for SQLite in the data dir)")
        return value
