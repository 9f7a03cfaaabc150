"""Options and responses of POST /api/caption."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class CaptionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = None
    keep_alive: float | StrictStr | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)
    num_beams: int | None = Field(default=None, ge=1)


class CaptionResponse(BaseModel):
    request_id: str
    caption: str | None = Field(default=None, description="for a single `image`")
    captions: list[str] | None = Field(default=None, description="for `batch`, in input order")
    model_used: str
    processing_time_ms: float
