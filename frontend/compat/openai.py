"""OpenAI-compatible POST /v1/embeddings and GET /v1/models (errors: compat.openai_errors;
chat completions: compat.openai_chat)."""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, WithJsonSchema

from frontend.compat.embed_inputs import ImageInput, Item, embed_items
from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, RegistryDep
from frontend.core.errors import InvalidRequest, ModelNotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1", tags=["openai"])
SERVED_TASKS = (Task.TEXT_EMBEDDING, Task.RERANK, Task.IMAGE_CAPTION)
TOKEN_IDS = (
    "input: token ids are not accepted; send the text itself (langchain-openai: "
    "OpenAIEmbeddings(check_embedding_ctx_length=False))"
)


_ITEM = "must be a text, or an object {text} or {image} holding one string"
# Jina's objects; the items are read in `items()`, so a bad one's 400 names it plainly (a
# pydantic union would name each alternative it tried).
_INPUT_SCHEMA = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "integer"},
                    {"type": "array", "items": {"type": "integer"}},
                    {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "image": {
                                "type": "string",
                                "description": "data: URL, base64, or an http(s) URL",
                            },
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        },
    ],
    "description": "A text or a list of texts (token ids are refused with 400); with "
    "`modality: image`, images (data: URLs, base64, or http(s) URLs); or Jina's objects "
    "`{text}` / `{image}`, mixed in one request (an image_embedding model: CLIP, SigLIP)",
}


def _jina_item(value: dict[str, Any], index: int) -> Item:
    """Jina's `{"text": ...}` or `{"image": ...}`."""
    field = f"input.{index}"
    if len(value) != 1 or not isinstance(next(iter(value.values())), str):
        raise InvalidRequest(
            f"invalid request: {field}: {_ITEM}", {"errors": [{"field": field, "message": _ITEM}]}
        )
    if "image" in value:
        return ImageInput(value["image"], f"{field}.image")
    if "text" in value:
        return str(value["text"])
    raise InvalidRequest(
        f"invalid request: {field}: {_ITEM}", {"errors": [{"field": field, "message": _ITEM}]}
    )


class OpenAIEmbeddingRequest(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible servers do: SDKs add new ones.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"model": "minilm", "input": ["hello", "homelab"]},
                {
                    "model": "clip",
                    "modality": "image",
                    "input": ["data:image/png;base64,iVBORw0KGgo...", "https://example.org/a.jpg"],
                },
                {
                    "model": "clip",
                    "input": [{"text": "a dog on a beach"}, {"image": "https://example.org/b.jpg"}],
                },
            ]
        },
    )

    input: Annotated[StrictStr | list[Any], WithJsonSchema(_INPUT_SCHEMA)]
    model: StrictStr = Field(description="Config id (e.g. `minilm`) or HF id")
    modality: Literal["text", "image"] = Field(
        default="text", description="Infinity's field: `image` reads the strings as images"
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, as OpenAI"
    )
    dimensions: int | None = Field(
        default=None, gt=0, description="Shorter vectors, for Matryoshka-trained models only"
    )
    user: StrictStr | None = Field(default=None, description="Ignored")

    def items(self) -> list[Item]:
        """The inputs in order: texts, and images where Infinity's modality or Jina's objects
        say so."""
        one = isinstance(self.input, str)
        values = [self.input] if one else list(self.input)
        if not values:
            raise InvalidRequest("input is empty", {"errors": [{"field": "input", "message": ""}]})
        items: list[Item] = []
        for index, value in enumerate(values):
            if isinstance(value, dict):
                items.append(_jina_item(value, index))
            elif isinstance(value, int | list) and not isinstance(value, bool):
                raise InvalidRequest(
                    TOKEN_IDS, {"errors": [{"field": "input", "message": TOKEN_IDS}]}
                )
            elif not isinstance(value, str):
                field = f"input.{index}"
                raise InvalidRequest(
                    f"invalid request: {field}: {_ITEM}",
                    {"errors": [{"field": field, "message": _ITEM}]},
                )
            elif self.modality == "image":
                items.append(ImageInput(value, "input" if one else f"input.{index}"))
            else:
                items.append(value)
        return items


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
    summary="OpenAI-compatible embeddings (also Infinity's image modality and Jina's objects)",
)
async def embeddings(
    body: OpenAIEmbeddingRequest, request: Request, service: EmbeddingServiceDep
) -> Response:
    done = await embed_items(request, service, body.items(), body.model, body.dimensions)
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
    return numpy_json(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": done.tokens, "total_tokens": done.tokens},
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
