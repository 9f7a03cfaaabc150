"""Options and responses of the image endpoints (POST /api/caption, POST /api/ocr)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
)
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
    """Caption and visual-question options; None leaves the checkpoint's generation_config
    (and the model's configured max_new_tokens) in charge. Greedy unless temperature > 0."""

    prompt: StrictStr | None = Field(default=None, max_length=20_000)
    system: StrictStr | None = Field(default=None, max_length=20_000)
    together: bool = False  # one answer about all images of `batch`, not one per image
    max_new_tokens: int | None = Field(default=None, ge=1)
    num_beams: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=10)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1, le=100_000)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    stop: list[StrictStr] | StrictStr | None = None

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
        """Everything that changes the answer (the result cache's key)."""
        chosen: dict[str, Any] = self.model_dump(exclude={"model", "keep_alive", "together"})
        if isinstance(self.stop, list):
            chosen["stop"] = "\x00".join(self.stop)
        return {name: value for name, value in chosen.items() if value is not None}

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class OcrOptions(ImageOptions):
    """OCR options; `dpi`, `pages`, `force_ocr` and `page_images` apply to documents only."""

    # "deu", "deu+eng" (several languages on one page), ISO 639-1 "de" accepted; checked
    # against the models' languages by frontend.images.languages, which also picks the model.
    lang: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    dpi: int | None = Field(default=None, ge=36, le=1200)
    pages: StrictStr | None = Field(default=None, max_length=200)
    force_ocr: bool = False
    page_images: bool = False


class TokenUsage(BaseModel):
    prompt_tokens: int = Field(description="tokens the model read (text and image tokens)")
    completion_tokens: int = Field(description="tokens it generated")
    total_tokens: int


class CaptionResponse(BaseModel):
    request_id: str
    caption: str | None = Field(default=None, description="for a single `image`")
    captions: list[str] | None = Field(default=None, description="for `batch`, in input order")
    done_reason: Literal["stop", "length"] | None = Field(
        default=None, description="for a single answer: `length` when max_new_tokens cut it"
    )
    done_reasons: list[Literal["stop", "length"]] | None = Field(
        default=None, description="for `batch`, per answer"
    )
    usage: TokenUsage | None = Field(
        default=None, description="summed over the answers (a cached answer counts its own)"
    )
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


class OcrDocumentPage(BaseModel):
    page: int = Field(description="1-based page number in the document")
    text: str = Field(description="the page's lines in reading order, rows separated by newlines")
    lines: list[OcrLine] = Field(description="boxes in pixels of the page as rendered (`dpi`)")
    source: Literal["ocr", "text-layer"] = Field(
        description="`text-layer`: the PDF's own text (confidence 1.0, no OCR); `ocr`: read "
        "from the rendered page"
    )
    width: int = Field(description="page width in pixels, as rendered")
    height: int = Field(description="page height in pixels, as rendered")
    dpi: float | None = Field(
        default=None,
        description="PDF render resolution (lower than asked when the page would pass the "
        "pixel limits); null for TIFF frames",
    )
    image: str | None = Field(
        default=None, description="the rendered page as a PNG data URL, with `page_images`"
    )


class OcrDocumentResponse(BaseModel):
    """A PDF or multi-page TIFF sent as one `image`."""

    request_id: str
    text: str = Field(description="the pages' text joined by form feeds (\\f), in page order")
    pages: list[OcrDocumentPage] = Field(description="the chosen pages (`pages`), in order")
    page_count: int = Field(description="pages in the whole document")
    model_used: str
    processing_time_ms: float
