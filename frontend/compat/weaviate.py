"""Weaviate's text2vec-transformers inference API (TRANSFORMERS_INFERENCE_API pointed here):
POST /vectors, GET /meta and the /.well-known/live and /ready probes. One text per request,
embedded by the default embedding model; `config` (pooling, task type) is accepted, not used."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, GatewayDep, RegistryDep
from frontend.core.errors import ModelNotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json
from frontend.health.routes import readiness

router = APIRouter(route_class=StrictJSONRoute, tags=["weaviate"])


class VectorRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: StrictStr
    config: dict[str, Any] | None = Field(
        default=None, description="pooling_strategy, task_type: accepted, not used"
    )


class VectorResponse(BaseModel):
    text: str
    vector: list[float]
    dim: int


@router.get("/.well-known/live", status_code=204, summary="Weaviate's liveness probe")
async def live() -> Response:
    return Response(status_code=204)


@router.get(
    "/.well-known/ready",
    status_code=204,
    summary="Weaviate's readiness probe: 204 when Triton is ready, else 503",
    responses={503: {"description": "not ready: Triton is not reachable, or draining"}},
)
async def ready(request: Request, gateway: GatewayDep) -> Response:
    return Response(status_code=204 if await readiness(request, gateway) == "ready" else 503)


@router.get(
    "/meta",
    responses=error_responses(ModelNotFound),
    summary="Weaviate's model metadata: the default embedding model",
)
async def meta(registry: RegistryDep) -> Response:
    found = registry.catalog.find(None, Task.TEXT_EMBEDDING)
    if found is None:
        raise ModelNotFound("no text_embedding model is enabled in the configuration")
    entry = found.entry
    return json_response({"model": {"_name_or_path": entry.hf_model, "model_id": entry.id}})


async def _vectors(body: VectorRequest, service: EmbeddingServiceDep) -> Response:
    done = await service.embed_counted([body.text], None)
    vector = done.vectors[0]
    return numpy_json({"text": body.text, "vector": vector, "dim": int(vector.shape[0])})


for _path in ("/vectors", "/vectors/"):
    router.add_api_route(
        _path,
        _vectors,
        methods=["POST"],
        response_model=VectorResponse,
        responses=error_responses(*INFERENCE_ERRORS),
        summary="Weaviate text2vec-transformers: one text's vector (the default model)",
        include_in_schema=_path == "/vectors",
    )
