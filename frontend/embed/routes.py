"""POST /api/embed."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request, Response

from frontend.core.deps import EmbeddingServiceDep
from frontend.core.errors import request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.schemas import EmbedRequest, EmbedResponse
from frontend.models.lifecycle import parse_keep_alive

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["embedding"])


@router.post(
    "/embed",
    response_model=EmbedResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Embed texts into vectors",
)
async def embed(body: EmbedRequest, request: Request, service: EmbeddingServiceDep) -> Response:
    started = time.perf_counter()
    keep_alive = parse_keep_alive(body.keep_alive)
    entry, vectors = await service.embed(body.texts, body.model, keep_alive)
    payload = {
        "request_id": request_id_of(request),
        "embeddings": vectors,
        "dimensions": int(vectors.shape[1]),
        "model_used": entry.id,
        "processing_time_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    # orjson writes the float32 matrix straight from numpy: far cheaper than lists of floats.
    content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, media_type="application/json")
