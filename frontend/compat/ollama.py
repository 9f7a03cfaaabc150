"""Ollama's other routes: POST /api/embeddings (its older embed), GET /api/tags, GET /api/ps and
GET /api/version, so Ollama clients and Open WebUI's Ollama connection list and use the
embedding and vision models. POST /api/embed itself is frontend.embed.routes (it takes both
requests); the chat routes are compat.ollama_chat, /api/show and /api/pull compat.ollama_models."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend import __version__
from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, LifecycleDep, RegistryDep
from frontend.core.errors import json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json, timed_embed
from frontend.embed.schemas import KEEP_ALIVE_DOC
from frontend.models.cache import snapshot_path
from frontend.models.lifecycle import parse_keep_alive

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["ollama"])


class OllamaEmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Ollama clients send options we do not use

    model: StrictStr = Field(description="Config id (`minilm` or `minilm:latest`) or HF id")
    prompt: StrictStr
    keep_alive: float | StrictStr | None = Field(default=None, description=KEEP_ALIVE_DOC)


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]


class OllamaModel(BaseModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: dict[str, object]


class OllamaTags(BaseModel):
    models: list[OllamaModel]


class OllamaVersion(BaseModel):
    version: str


class OllamaRunning(BaseModel):
    name: str
    model: str
    size: int = Field(description="Memory of the model's processes (bytes)")
    size_vram: int = Field(description="GPU memory of the model's processes (bytes)")
    digest: str
    details: dict[str, object]
    expires_at: str = Field(description="When an idle unload is due (far off: pinned or busy)")


class OllamaPs(BaseModel):
    models: list[OllamaRunning]


# What Ollama answers for a model kept loaded forever (keep_alive -1).
_FOREVER = "2318-11-29T00:00:00Z"
# The tasks Ollama clients see, with the family their details name.
LISTED = {Task.TEXT_EMBEDDING: "embedding", Task.IMAGE_CAPTION: "vision"}


@router.post(
    "/embeddings",
    response_model=OllamaEmbeddingsResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Ollama's older embedding API: one prompt, one vector",
)
async def embeddings(body: OllamaEmbeddingsRequest, service: EmbeddingServiceDep) -> Response:
    done, _ = await timed_embed(
        service, [body.prompt], body.model, parse_keep_alive(body.keep_alive)
    )
    return numpy_json({"embedding": done.vectors[0]})


def _size(hub: Path, hf_model: str) -> int:
    snapshot = snapshot_path(hub, hf_model)
    if snapshot is None:
        return 0
    return sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())


@router.get(
    "/tags", response_model=OllamaTags, summary="Ollama's model list: embedders and vision models"
)
async def tags(request: Request, registry: RegistryDep) -> Response:
    started = getattr(request.app.state, "started_at", 0.0)
    modified = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
    models = []
    for found in (f for task in LISTED for f in registry.catalog.all(task)):
        entry = found.entry
        models.append(
            {
                "name": f"{entry.id}:latest",
                "model": f"{entry.id}:latest",
                "modified_at": modified,
                "size": _size(registry.hub_dir, entry.hf_model),
                "digest": "",
                "details": {
                    "format": "safetensors",
                    "family": LISTED[found.task],
                    "families": [LISTED[found.task]],
                    "parameter_size": "",
                    "quantization_level": "",
                    "hf_model": entry.hf_model,
                },
            }
        )
    return json_response({"models": models})


@router.get("/version", response_model=OllamaVersion, summary="Ollama's version probe")
async def version() -> Response:
    return json_response({"version": __version__})


@router.get(
    "/ps", response_model=OllamaPs, summary="Ollama's loaded models: embedders and vision models"
)
async def ps(registry: RegistryDep, lifecycle: LifecycleDep) -> Response:
    now = time.monotonic()
    listed = {f.entry.id: LISTED[task] for task in LISTED for f in registry.catalog.all(task)}
    models = []
    for entry in registry.loaded_entries():
        if entry.id not in listed:
            continue
        memory, gpu_memory = registry.footprint(entry.id)
        remaining = lifecycle.expires_in(entry, now)
        if remaining is None:
            expires = _FOREVER
        else:
            moment = datetime.now(UTC) + timedelta(seconds=max(remaining, 0.0))
            expires = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
        models.append(
            {
                "name": f"{entry.id}:latest",
                "model": f"{entry.id}:latest",
                "size": int(memory or 0),
                "size_vram": int(gpu_memory or 0),
                "digest": "",
                "details": {
                    "format": "safetensors",
                    "family": listed[entry.id],
                    "hf_model": entry.hf_model,
                },
                "expires_at": expires,
            }
        )
    return json_response({"models": models})
