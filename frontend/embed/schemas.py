"""Request and response shapes of POST /api/embed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class EmbedRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"texts": ["hello world", "homelab"], "model": "minilm"}]},
    )

    texts: list[StrictStr] = Field(
        min_length=1, description="Texts to embed; limits come from `limits` in config.yaml."
    )
    model: StrictStr | None = Field(
        default=None,
        description="Config id (e.g. `minilm`) or HF id; the default model if omitted.",
    )
    keep_alive: float | StrictStr | None = Field(
        default=None,
        description="How long the model stays loaded after this request: seconds or '5m'; "
        "0 unloads right after it, -1 keeps it loaded (up to the admin cap).",
    )


class EmbedResponse(BaseModel):
    request_id: str
    embeddings: list[list[float]]
    dimensions: int
    model_used: str
    processing_time_ms: float
