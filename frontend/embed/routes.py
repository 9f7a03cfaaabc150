"""POST /api/embed: ours ({texts, images}, JSON or multipart) and Ollama's ({model, input})."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

from frontend.core.config import ModelEntry, Task
from frontend.core.deps import EmbeddingServiceDep
from frontend.core.errors import request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed import images
from frontend.embed.form import FORM_FIELDS, EmbedFormRoute
from frontend.embed.schemas import EmbedRequest, EmbedResponse
from frontend.embed.service import Embedded, EmbeddingService
from frontend.models.catalog import ModelCatalog
from frontend.models.lifecycle import parse_keep_alive

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["embedding"])


# Ollama's library names (with their tags) of embedding models that are on the Hugging Face
# hub: a client still set up for Ollama finds the same model here, if it is enabled (by HF id).
OLLAMA_LIBRARY = {
    "all-minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm:22m": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm:l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm:33m": "sentence-transformers/all-MiniLM-L12-v2",
    "all-minilm:l12-v2": "sentence-transformers/all-MiniLM-L12-v2",
    "nomic-embed-text": "nomic-ai/nomic-embed-text-v1.5",
    "nomic-embed-text:v1.5": "nomic-ai/nomic-embed-text-v1.5",
    "mxbai-embed-large": "mixedbread-ai/mxbai-embed-large-v1",
    "mxbai-embed-large:335m": "mixedbread-ai/mxbai-embed-large-v1",
    "bge-m3": "BAAI/bge-m3",
    "bge-large": "BAAI/bge-large-en-v1.5",
    "snowflake-arctic-embed": "Snowflake/snowflake-arctic-embed-l",
    "snowflake-arctic-embed:335m": "Snowflake/snowflake-arctic-embed-l",
    "paraphrase-multilingual": "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
}


def model_name(name: str | None) -> str | None:
    """Ollama clients name models `name:tag`; ours have one version, the `latest` one."""
    return name.removesuffix(":latest") if name is not None else None


def embedding_entry(catalog: ModelCatalog, name: str | None) -> ModelEntry:
    """The enabled embedding model a request names: config id, HF id, either with Ollama's
    `:latest`, or Ollama's library name of a model enabled here by its HF id."""
    ref = model_name(name)
    if ref is not None and catalog.find(ref, Task.TEXT_EMBEDDING) is None:
        hf_id = OLLAMA_LIBRARY.get(ref)
        if hf_id is not None and catalog.find(hf_id, Task.TEXT_EMBEDDING) is not None:
            ref = hf_id
    return catalog.lookup(ref, Task.TEXT_EMBEDDING)


async def timed_embed(
    service: EmbeddingService,
    texts: list[str],
    model: str | None,
    keep_alive: float | None = None,
    dimensions: int | None = None,
) -> tuple[Embedded, int]:
    """The embedding and the nanoseconds spent loading the model for it (0 when loaded)."""
    registry = service.registry
    entry = embedding_entry(registry.catalog, model)
    was_loaded = registry.is_loaded(entry.id)
    done = await service.embed_counted(texts, entry.id, keep_alive, dimensions)
    loaded = 0 if was_loaded else int(registry.last_load_seconds.get(entry.id, 0.0) * 1e9)
    return done, loaded


def numpy_json(payload: Any, status: int = 200) -> Response:
    # orjson writes the float32 matrix straight from numpy: far cheaper than lists of floats.
    content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status, media_type="application/json")


async def embed(body: EmbedRequest, request: Request, service: EmbeddingServiceDep) -> Response:
    started = time.perf_counter()
    keep_alive = parse_keep_alive(body.keep_alive)
    catalog = service.registry.catalog
    named = model_name(body.model)
    if body.images is not None or (
        named is not None and catalog.find(named, Task.TEXT_EMBEDDING) is None
        and catalog.find(named, Task.IMAGE_EMBEDDING) is not None
    ):  # fmt: skip
        return await _embed_images(body, request, service, keep_alive, started)
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


router.add_api_route(
    "/embed",
    embed,
    methods=["POST"],
    route_class_override=EmbedFormRoute,  # JSON, or multipart with image files
    response_model=EmbedResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Embed texts and images into vectors (also Ollama's /api/embed request)",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": FORM_FIELDS}},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {k: v for k, v in FORM_FIELDS.items() if k != "images"},
                    }
                },
            }
        }
    },
)


async def _embed_images(
    body: EmbedRequest,
    request: Request,
    service: EmbeddingService,
    keep_alive: float | None,
    started: float,
) -> Response:
    """Texts and images through one image_embedding model: the texts' vectors, then the
    images'."""
    registry = service.registry
    entry = images.vector_model(registry, model_name(body.model))
    texts = body.all_texts()
    images.check_count(len(body.images or []), service.limits)  # before decoding any
    blobs = [images.base64_image(value, i) for i, value in enumerate(body.images or [])]
    geometry = images.input_geometry(registry, entry) if blobs else None
    pictures = await images.decode_pictures(request.app, blobs, geometry=geometry) if blobs else []
    parts = []
    if texts:
        parts.append(await images.embed_texts(registry, entry, texts, service.limits, keep_alive))
    if pictures:
        parts.append(await images.embed_pictures(registry, entry, pictures, keep_alive))
    vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
    elapsed = time.perf_counter() - started
    return numpy_json(
        {
            "request_id": request_id_of(request),
            "embeddings": vectors,
            "dimensions": int(vectors.shape[1]),
            "model_used": entry.id,
            "processing_time_ms": round(elapsed * 1000, 2),
            "model": body.model or entry.id,
            "total_duration": int(elapsed * 1e9),
            "load_duration": 0,
            "prompt_eval_count": 0,
        }
    )
