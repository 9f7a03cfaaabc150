"""OpenAI-compatible POST /v1/embeddings and GET /v1/models (errors: compat.openai_errors;
chat completions: compat.openai_chat)."""

from __future__ import annotations

import base64
import time
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, RegistryDep
from frontend.core.errors import InvalidRequest, ModelNotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json, timed_embed

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1", tags=["openai"])
SERVED_TASKS = (Task.TEXT_EMBEDDING, Task.RERANK, Task.IMAGE_CAPTION)
TOKEN_IDS = (
    "input: token ids are not accepted; send the text itself (langchain-openai: "
    "OpenAIEmbeddings(check_embedding_ctx_length=False))"
)


class OpenAIEmbeddingRequest(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible servers do: SDKs add new ones.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "minilm", "input": ["hello", "homelab"]}]},
    )

    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]] = Field(
        description="A text or a list of texts (token ids are refused with 400)"
    )
    model: StrictStr = Field(description="Config id (e.g. `minilm`) or HF id")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, as OpenAI"
    )
    dimensions: int | None = Field(
        default=None, gt=0, description="Shorter vectors, for Matryoshka-trained models only"
    )
    user: StrictStr | None = Field(default=None, description="Ignored")

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            return [self.input]
        if not self.input:
            raise InvalidRequest("input is empty", {"errors": [{"field": "input", "message": ""}]})
        if not all(isinstance(item, str) for item in self.input):
            raise InvalidRequest(TOKEN_IDS, {"errors": [{"field": "input", "message": TOKEN_IDS}]})
        return [str(item) for item in self.input]


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of float32 LE bytes")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


@router.post(
    "/embeddings",
    response_model=OpenAIEmbeddingResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="OpenAI-compatible embeddings",
)
async def embeddings(body: OpenAIEmbeddingRequest, service: EmbeddingServiceDep) -> Response:
    done, _ = await timed_embed(service, body.texts(), body.model, dimensions=body.dimensions)
    vectors = done.vectors
    if body.encoding_format == "base64":
        little = np.ascontiguousarray(vectors, dtype="<f4")
        data: list[dict[str, object]] = [
            {"object": "embedding", "index": i, "embedding": base64.b64encode(row).decode()}
            for i, row in enumerate(little)
        ]
    else:
        data = [
            {"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(vectors)
        ]
    tokens = int(done.tokens.sum())
    return numpy_json(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _card(model_id: str, started: float) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": int(started), "owned_by": "homelab-ai"}


@router.get(
    "/models", response_model=ModelList, summary="Enabled embedding, rerank and vision models"
)
async def list_models(request: Request, registry: RegistryDep) -> Response:
    started = getattr(request.app.state, "started_at", time.time())
    found = [f for task in SERVED_TASKS for f in registry.catalog.all(task)]
    return json_response({"object": "list", "data": [_card(f.entry.id, started) for f in found]})


@router.get(
    "/models/{model_id:path}",
    response_model=ModelCard,
    responses=error_responses(ModelNotFound),
    summary="One enabled embedding, rerank or vision model (config id or HF id)",
)
async def get_model(model_id: str, request: Request, registry: RegistryDep) -> Response:
    started = getattr(request.app.state, "started_at", time.time())
    for task in SERVED_TASKS:
        found = registry.catalog.find(model_id, task)
        if found is not None:
            return json_response(_card(found.entry.id, started))
    raise ModelNotFound(f"model '{model_id[:100]}' is not an enabled model")


# Infinity serves these two without the /v1 prefix, and its clients (such as langchain's
# InfinityEmbeddings) post to `{url}/embeddings`: the same operations, under our error envelope.
unprefixed_router = APIRouter(route_class=StrictJSONRoute, tags=["openai"])
unprefixed_router.add_api_route(
    "/embeddings",
    embeddings,
    methods=["POST"],
    response_model=OpenAIEmbeddingResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="OpenAI-compatible embeddings at Infinity's path (no /v1)",
)
unprefixed_router.add_api_route(
    "/models",
    list_models,
    methods=["GET"],
    response_model=ModelList,
    summary="Enabled embedding, rerank and vision models at Infinity's path (no /v1)",
)
