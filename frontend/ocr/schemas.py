"""Options and responses of POST /api/ocr."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class OcrOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = None
    keep_alive: float | StrictStr | None = None


class OcrLine(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="4 [x, y] corners, clockwise from top-left")


class OcrPage(BaseModel):
    text: str = Field(description="all lines in reading order, rows separated by newlines")
    lines: list[OcrLine]


class OcrResponse(BaseModel):
    request_id: str
    text: str | None = Field(default=None, description="for a single `image`")
    lines: list[OcrLine] | None = Field(default=None, description="for a single `image`")
    results: list[OcrPage] | None = Field(default=None, description="for `batch`, in order")
    model_used: str
    processing_time_ms: float
