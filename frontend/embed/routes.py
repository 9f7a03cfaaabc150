"""POST /api/embed: our request ({texts}) and Ollama's ({model, input}) on one route."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep
from frontend.core.errors import request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.schemas import EmbedRequest, EmbedResponse
from frontend.embed.service import Embedded, EmbeddingService
from frontend.models.lifecycle import parse_keep_alive

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["embedding"])


def model_name(name: str | None) -> str | None:
    """Ollama clients name models `name:tag`; ours have one version, the `latest` one."""
    return name.removesuffix(":latest") if name is not None else None


async def timed_embed(
    service: EmbeddingService,
    texts: list[str],
    model: str | None,
    keep_alive: float | None = None,
    dimensions: int | None = None,
) -> tuple[Embedded, int]:
    """The embedding and the nanoseconds spent loading the model for it (0 when loaded)."""
    registry = service.registry
    entry = registry.catalog.lookup(model_name(model), Task.TEXT_EMBEDDING)
    was_loaded = registry.is_loaded(entry.id)
    done = await service.embed_counted(texts, entry.id, keep_alive, dimensions)
    loaded = 0 if was_loaded else int(registry.last_load_seconds.get(entry.id, 0.0) * 1e9)
    return done, loaded


def numpy_json(payload: Any, status: int = 200) -> Response:
    # orjson writes the float32 matrix straight from numpy: far cheaper than lists of floats.
    content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status, media_type="application/json")


@router.post(
    "/embed",
    response_model=EmbedResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Embed texts into vectors (also Ollama's /api/embed request)",
)
async def embed(body: EmbedRequest, request: Request, service: EmbeddingServiceDep) -> Response:
    started = time.perf_counter()
    keep_alive = parse_keep_alive(body.keep_alive)
    done, load_ns = await timed_embed(
        service, body.all_texts(), body.model, keep_alive, body.dimensions
    )
    elapsed = time.perf_counter() - started
    return numpy_json(
        {
            "request_id": request_id_of(request),
            "embeddings": done.vectors,
            "dimensions": int(done.vectors.shape[1]),
            "model_used": done.entry.id,
            "processing_time_ms": round(elapsed * 1000, 2),
            "model": body.model or done.entry.id,
            "total_duration": int(elapsed * 1e9),
            "load_duration": load_ns,
            "prompt_eval_count": int(done.tokens.sum()),
        }
    )
