"""Ollama's POST /api/show (capabilities) and POST /api/pull (a download with Ollama's progress
lines), and Ollama's error shape {"error": "..."} on its model and chat routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.compat.ollama import LISTED
from frontend.compat.ollama_chat import NDJSON
from frontend.compat.openai_errors import ErrorRewriteMiddleware, envelope_error
from frontend.core.config import Task
from frontend.core.deps import DownloadsDep, ModelServiceDep, RegistryDep
from frontend.core.errors import InvalidRequest, ModelNotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import error_responses, use_error_shape
from frontend.models.downloads import DownloadJob

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["ollama"])
# Ollama's own routes that answer errors as Ollama does; /api/embed, /api/tags and the rest
# are shared with (or older than) these and keep the service's envelope.
OLLAMA_PATHS = ("/api/generate", "/api/chat", "/api/show", "/api/pull")
CAPABILITIES = {
    Task.IMAGE_CAPTION: ["completion", "vision"],
    Task.TEXT_EMBEDDING: ["embedding"],
}
_PROGRESS_SECONDS = 0.5


class OllamaModelRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = Field(default=None, description="Model id, `id:latest` or HF id")
    name: StrictStr | None = Field(default=None, description="Older clients' name for `model`")
    stream: bool = Field(default=True, description="/api/pull: NDJSON progress lines")

    def ref(self) -> str:
        chosen = self.model or self.name
        if not chosen:
            raise InvalidRequest(
                "model is required", {"errors": [{"field": "model", "message": "required"}]}
            )
        return chosen


class OllamaShow(BaseModel):
    modelfile: str
    parameters: str
    template: str
    details: dict[str, object]
    model_info: dict[str, object]
    capabilities: list[str]


class OllamaStatus(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


@router.post(
    "/show",
    response_model=OllamaShow,
    responses=error_responses(ModelNotFound),
    summary="Ollama's model details: family and capabilities (vision, completion, embedding)",
)
async def show(body: OllamaModelRequest, registry: RegistryDep) -> Response:
    ref = body.ref()
    for task in LISTED:
        found = registry.catalog.find(ref.removesuffix(":latest"), task)
        if found is None:
            continue
        entry = found.entry
        family = LISTED[task]
        return json_response(
            {
                "modelfile": "",
                "parameters": "",
                "template": "",
                "details": {
                    "format": "safetensors",
                    "family": family,
                    "families": [family],
                    "parameter_size": "",
                    "quantization_level": "",
                    "hf_model": entry.hf_model,
                },
                "model_info": {"general.architecture": family, "hf_model": entry.hf_model},
                "capabilities": CAPABILITIES[task],
            }
        )
    raise ModelNotFound(f"model '{ref[:100]}' not found", {"model_id": ref[:100]})


def _hf_id(ref: str, registry: RegistryDep) -> str:
    """A configured model's HF id, or the name itself when it is an HF id (org/name)."""
    name = ref.removesuffix(":latest")
    found = registry.catalog.find(name)
    if found is not None:
        return found.entry.hf_model
    if "/" not in name:
        raise ModelNotFound(
            f"model '{name[:100]}' is neither a configured model nor a Hugging Face id (org/name)",
            {"model_id": name[:100]},
        )
    return name


def _progress(job: DownloadJob) -> dict[str, Any]:
    return {
        "status": f"downloading {job.model_id}",
        "digest": job.model_id,
        "total": job.bytes_total or 0,
        "completed": job.bytes_done,
    }


@router.post(
    "/pull",
    response_model=OllamaStatus,
    responses=error_responses(InvalidRequest, ModelNotFound),
    summary="Ollama's pull: download a model into the cache, with Ollama's progress lines",
)
async def pull(
    body: OllamaModelRequest,
    registry: RegistryDep,
    service: ModelServiceDep,
    downloads: DownloadsDep,
) -> Response:
    hf_model = _hf_id(body.ref(), registry)
    job = await service.download(hf_model)
    if not body.stream:
        job = await downloads.wait(job.id)
        if job.state == "failed":
            raise InvalidRequest(f"download failed: {job.error or 'unknown error'}")
        return json_response({"status": "success"})

    async def lines() -> AsyncIterator[bytes]:
        yield orjson.dumps({"status": "pulling manifest"}) + b"\n"
        waiting = asyncio.ensure_future(downloads.wait(job.id))
        try:
            while not waiting.done():
                yield orjson.dumps(_progress(job)) + b"\n"
                await asyncio.wait({waiting}, timeout=_PROGRESS_SECONDS)
        finally:
            waiting.cancel()  # the download goes on without its watcher (a client gone)
        if job.state == "failed":
            yield orjson.dumps({"error": f"download failed: {job.error or 'unknown'}"}) + b"\n"
            return
        yield orjson.dumps(_progress(job)) + b"\n"
        yield orjson.dumps({"status": "success"}) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


def ollama_error(body: bytes) -> bytes:
    """Our envelope as Ollama's {"error": message}; anything else is left as it is."""
    error = envelope_error(body)
    if error is None:
        return body
    return orjson.dumps({"error": str(error["message"])})


class OllamaErrorMiddleware(ErrorRewriteMiddleware):
    def applies(self, path: str) -> bool:
        return path in OLLAMA_PATHS

    def reshape(self, status: int, body: bytes) -> tuple[int, bytes]:
        return status, ollama_error(body)


class OllamaError(BaseModel):
    error: str


def document_ollama_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Point the error responses of Ollama's chat and model operations at its shape."""
    return use_error_shape(schema, OllamaError, OLLAMA_PATHS.__contains__)
