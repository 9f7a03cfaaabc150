"""Cohere's embed: POST /v2/embed (the cohere SDK's ClientV2.embed, LangChain's CohereEmbeddings)
and POST /v1/embed (Client.embed). Texts only; `input_type` is accepted and not used (models
here carry their own prompts). Embedding types: `float`, `base64` (float32 little-endian bytes),
and the 1-bit `binary` (signed) and `ubinary` (unsigned) packings, as Cohere defines them."""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.core.deps import EmbeddingServiceDep
from frontend.core.errors import InvalidRequest, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json, timed_embed
from frontend.embed.service import EmbeddingService

router = APIRouter(route_class=StrictJSONRoute, tags=["cohere"])
EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]
SERVED_TYPES = ("float", "base64", "binary", "ubinary")


class TextContent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: StrictStr | None = None


class EmbedInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: list[TextContent]


class CohereEmbedRequest(BaseModel):
    """Unknown fields (max_tokens, priority, ...) are ignored, as Cohere clients send more."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = Field(default=None, description="Config id or HF id")
    texts: list[StrictStr] | None = None
    inputs: list[EmbedInput] | None = Field(default=None, description="Text content only")
    images: list[StrictStr] | None = Field(default=None, description="Refused: text models")
    input_type: StrictStr | None = Field(default=None, description="Accepted, not used")
    embedding_types: list[EmbeddingType] | None = Field(
        default=None, description="float (default), base64, binary, ubinary"
    )
    output_dimension: int | None = Field(default=None, gt=0, description="Matryoshka models")
    truncate: StrictStr | None = Field(default=None, description="Texts are always cut to fit")

    def all_texts(self) -> list[str]:
        if self.images:
            raise InvalidRequest(
                "images: only texts are embedded here",
                {"errors": [{"field": "images", "message": "not supported"}]},
            )
        texts = list(self.texts or [])
        for index, item in enumerate(self.inputs or []):
            parts = [part.text for part in item.content if part.type == "text" and part.text]
            if len(parts) != len(item.content) or not parts:
                message = "only text content is embedded here"
                raise InvalidRequest(
                    f"inputs.{index}: {message}",
                    {"errors": [{"field": f"inputs.{index}", "message": message}]},
                )
            texts.append(" ".join(parts))
        if not texts:
            raise InvalidRequest(
                "texts: send at least one text",
                {"errors": [{"field": "texts", "message": "empty"}]},
            )
        return texts


class CohereEmbedResponse(BaseModel):
    id: str = Field(description="The request id")
    embeddings: dict[str, list[Any]] | list[list[float]] = Field(
        description="by type ({float: [[...]], ...}), or a plain list on /v1 without types"
    )
    texts: list[str]
    meta: dict[str, Any]
    response_type: Literal["embeddings_by_type", "embeddings_floats"]


def _typed(vectors: np.ndarray, kind: str) -> Any:
    if kind == "float":
        return vectors
    if kind == "base64":
        little = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode() for row in little]
    bits = np.packbits(vectors > 0, axis=1)  # 8 dimensions per byte, the first the high bit
    return bits.astype(np.int16) - 128 if kind == "binary" else bits


async def cohere_embed(
    body: CohereEmbedRequest, request: Request, service: EmbeddingService, version: str
) -> Response:
    types = body.embedding_types or ["float"]
    unserved = [t for t in types if t not in SERVED_TYPES]
    if unserved:
        message = f"embedding types served here: {', '.join(SERVED_TYPES)}"
        raise InvalidRequest(
            f"embedding_types: {message}",
            {"errors": [{"field": "embedding_types", "message": message}]},
        )
    texts = body.all_texts()
    done, _ = await timed_embed(service, texts, body.model, dimensions=body.output_dimension)
    meta = {
        "api_version": {"version": version},
        "billed_units": {"input_tokens": int(done.tokens.sum())},
    }
    payload: dict[str, Any] = {"id": request_id_of(request), "texts": texts, "meta": meta}
    if version == "1" and body.embedding_types is None:
        payload.update(embeddings=done.vectors, response_type="embeddings_floats")
    else:
        by_type = {kind: _typed(done.vectors, kind) for kind in dict.fromkeys(types)}
        payload.update(embeddings=by_type, response_type="embeddings_by_type")
    return numpy_json(payload)


@router.post(
    "/v2/embed",
    response_model=CohereEmbedResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Cohere v2's embed (the cohere SDK's ClientV2.embed)",
)
async def embed_v2(
    body: CohereEmbedRequest, request: Request, service: EmbeddingServiceDep
) -> Response:
    return await cohere_embed(body, request, service, "2")


@router.post(
    "/v1/embed",
    response_model=CohereEmbedResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Cohere v1's embed (the cohere SDK's Client.embed): floats unless types are asked",
)
async def embed_v1(
    body: CohereEmbedRequest, request: Request, service: EmbeddingServiceDep
) -> Response:
    return await cohere_embed(body, request, service, "1")
