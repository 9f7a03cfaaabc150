"""Request and response shapes of POST /api/embed (ours, and Ollama's request on the same route)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

KEEP_ALIVE_DOC = (
    "How long the model stays loaded after this request: seconds or '5m'; "
    "0 unloads right after it, -1 keeps it loaded (up to the admin cap)."
)


class EmbedRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["hello world", "homelab"], "model": "minilm"},
                {"model": "minilm", "input": ["hello world", "homelab"]},
                {"model": "clip", "texts": ["a dog on a beach"], "images": ["iVBORw0KGgo..."]},
            ]
        },
    )

    texts: list[StrictStr] | None = Field(
        default=None,
        min_length=1,
        description="Texts to embed; limits come from `limits` in config.yaml. "
        "Give `texts` or Ollama's `input`.",
    )
    input: StrictStr | list[StrictStr] | None = Field(
        default=None, description="Ollama's field: one text or a list of texts"
    )
    model: StrictStr | None = Field(
        default=None,
        description="Config id (e.g. `minilm`, Ollama's `minilm:latest` too) or HF id; "
        "the default model if omitted.",
    )
    keep_alive: float | StrictStr | None = Field(default=None, description=KEEP_ALIVE_DOC)
    truncate: StrictBool | None = Field(
        default=None, description="Ollama's field; texts are always cut to the model's limit"
    )
    dimensions: int | None = Field(
        default=None, gt=0, description="Shorter vectors, for Matryoshka-trained models only"
    )
    options: dict[str, Any] | None = Field(
        default=None, description="Ollama's runtime options (ignored)"
    )
    images: list[StrictStr] | None = Field(
        default=None,
        min_length=1,
        description="Images (base64 or data: URLs; or multipart `images` file parts with "
        "`texts`/`model` form fields), embedded by an image_embedding model "
        "(CLIP, SigLIP) into the space of its texts: `embeddings` lists the texts' vectors, "
        "then the images'. Limits and decoding as on /api/caption.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> EmbedRequest:
        if self.texts is not None and self.input is not None:
            raise ValueError("give either texts or input")
        if self.texts is None and self.input is None and self.images is None:
            raise ValueError("give texts, input or images")
        return self

    def all_texts(self) -> list[str]:
        if self.texts is not None:
            return self.texts
        return [self.input] if isinstance(self.input, str) else list(self.input or [])


class EmbedResponse(BaseModel):
    request_id: str
    embeddings: list[list[float]]
    dimensions: int
    model_used: str
    processing_time_ms: float
    model: str = Field(description="Ollama's field: the model as asked for (else its config id)")
    total_duration: int = Field(description="Ollama's field: nanoseconds spent on the request")
    load_duration: int = Field(description="Ollama's field: nanoseconds spent loading the model")
    prompt_eval_count: int = Field(description="Ollama's field: tokens read from the inputs")
