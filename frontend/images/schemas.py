"""Options and responses of the image endpoints (POST /api/caption, POST /api/ocr)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class ImageOptions(BaseModel):
    """What every image endpoint accepts beside the images."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = None
    keep_alive: float | StrictStr | None = None

    def parameters(self) -> dict[str, int | str]:
        """Per-request Triton parameters (none unless the task takes some)."""
        return {}


class CaptionOptions(ImageOptions):
    max_new_tokens: int | None = Field(default=None, ge=1)
    num_beams: int | None = Field(default=None, ge=1)

    @field_validator("max_new_tokens", "num_beams")
    @classmethod
    def _within_limits(cls, value: int | None, info: ValidationInfo) -> int | None:
        # The configured limits (limits.max_new_tokens / max_num_beams) arrive as context.
        limits: Any = (info.context or {}).get("limits")
        bound = None
        if limits is not None and info.field_name is not None:
            bound = getattr(
                limits, {"num_beams": "max_num_beams"}.get(info.field_name, "max_new_tokens")
            )
        if value is not None and bound is not None and value > bound:
            raise PydanticCustomError("limit", "must be at most {bound}", {"bound": bound})
        return value

    def parameters(self) -> dict[str, int | str]:
        chosen = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams}
        return {name: value for name, value in chosen.items() if value is not None}


class OcrOptions(ImageOptions):
    # "deu", "deu+eng" (several languages on one page), ISO 639-1 "de" accepted; checked
    # against the models' languages by frontend.images.languages, which also picks the model.
    lang: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class CaptionResponse(BaseModel):
    request_id: str
    caption: str | None = Field(default=None, description="for a single `image`")
    captions: list[str] | None = Field(default=None, description="for `batch`, in input order")
    model_used: str
    processing_time_ms: float


class OcrLine(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="4 [x, y] corners, clockwise from top-left")
    block: int = Field(
        default=0,
        description="index of the line's text block (column, paragraph or table), in reading "
        "order; lines come block by block, each block row by row along the page's skew",
    )


class OcrPage(BaseModel):
    text: str = Field(
        description="all lines in reading order (block by block), rows separated by newlines"
    )
    lines: list[OcrLine]


class OcrResponse(BaseModel):
    request_id: str
    text: str | None = Field(default=None, description="for a single `image`")
    lines: list[OcrLine] | None = Field(default=None, description="for a single `image`")
    results: list[OcrPage] | None = Field(default=None, description="for `batch`, in order")
    model_used: str
    processing_time_ms: float
