"""Request and response shapes of the model management API."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool

TaskName = Literal[
    "embedding", "caption", "ocr", "rerank", "text_embedding", "image_caption", "image_embedding"
]


class DownloadJobOut(BaseModel):
    id: str
    model_id: str
    state: Literal["queued", "running", "done", "failed"]
    bytes_done: int
    bytes_total: int | None = Field(description="known once the file list is read")
    files_done: int
    files_total: int | None
    error: str | None
    started_at: float = Field(description="Unix time")
    finished_at: float | None


class ModelInfo(BaseModel):
    id: str = Field(
        description="Hugging Face model id (or rapidocr/..., tesseract/... for built-in engines)"
    )
    config_id: str | None = Field(description="the configured model's id, used by the task APIs")
    task: Literal["embedding", "caption", "ocr", "rerank", "image_embedding"] | None = Field(
        description="null for a cached model that is neither configured nor in the manifest"
    )
    name: str | None
    team: str | None
    size_mb: int | None = Field(description="approximate download size, from the manifest")
    dimensions: int | None
    large: bool = Field(description="needs a large GPU or a lot of memory")
    in_manifest: bool
    builtin: bool = Field(description="weights ship inside a Python package: nothing to download")
    downloaded: bool
    size_on_disk_bytes: int
    configured: bool
    added_at_runtime: bool = Field(description="added with POST /api/models")
    enabled: bool
    default: bool = Field(
        description="the model its task's requests without a model get (one per task): chosen "
        "at runtime with PATCH, else config.yaml's `default: true` entry, else the first"
    )
    pinned: bool
    loaded: bool
    memory_bytes: int | None = Field(description="host memory (PSS) of its Triton processes")
    gpu_memory_bytes: int | None
    keep_alive_seconds: float | None = Field(description="idle time before unloading; null: never")
    expires_in_seconds: float | None = Field(description="while loaded and idle")
    download: DownloadJobOut | None = Field(description="the download running now, if any")
    languages: list[str] | None = Field(
        default=None,
        description="OCR models: the languages it reads (Tesseract codes: eng, deu, chi_sim), "
        "its default first; what `lang` on POST /api/ocr may ask for. null: not an OCR model, "
        "or none declared (a Hugging Face model without `languages` in its entry)",
    )


class ModelList(BaseModel):
    models: list[ModelInfo]


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(
        validation_alias=AliasChoices("model_id", "id", "hf_model"),
        max_length=200,
        description="Hugging Face model id, ORG/NAME",
        examples=["sentence-transformers/all-MiniLM-L6-v2"],
    )


class AddModelRequest(BaseModel):
    """A model to serve: it gets a Triton entry and is loaded on its first request."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    hf_model: str = Field(
        validation_alias=AliasChoices("hf_model", "model_id"),
        max_length=200,
        examples=["BAAI/bge-small-en-v1.5"],
    )
    id: str | None = Field(
        default=None,
        max_length=64,
        description="config id used by the task APIs (default: derived from the HF name)",
    )
    dimensions: int | None = Field(default=None, gt=0, le=65_536)
    device: Literal["auto", "cpu", "gpu"] = "auto"
    instances: int = Field(default=1, ge=1, le=16)
    threads: int = Field(default=1, ge=1, le=256)
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    keep_alive_seconds: float | None = Field(default=None, ge=0)
    pinned: bool = False
    default: StrictBool = Field(
        default=False, description="make it its task's default model (replacing the previous)"
    )


class ModelPatch(BaseModel):
    """Runtime changes, kept in the settings store; null resets a field to the configuration."""

    model_config = ConfigDict(extra="forbid")

    keep_alive_seconds: float | None = Field(
        default=None, ge=-1, description="idle seconds before unloading; -1: never; null: reset"
    )
    pinned: bool | None = None
    default: StrictBool | None = Field(
        default=None,
        description="true: the task's default model from now on (the previous one stops being "
        "it); false or null: if it is the default chosen at runtime, config.yaml's default "
        "serves again (config.yaml's own default cannot be unset: make another model default)",
    )
