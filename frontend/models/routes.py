"""Model management: list, add, download, delete, runtime settings, explicit load/unload.

`{model_id}` is a config id (`minilm`) or a Hugging Face id (`BAAI/bge-small-en-v1.5`, slashes
and all); `GET /api/models/{task}` lists one task (embedding, caption or ocr).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.types import DecoratedCallable

from frontend.core.config import Task
from frontend.core.deps import DownloadsDep, ModelServiceDep, RegistryDep
from frontend.core.errors import Conflict, ModelLoadFailed, ModelNotFound, NotFound
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import error_responses
from frontend.models.schemas import (
    AddModelRequest,
    DownloadJobOut,
    DownloadRequest,
    ModelInfo,
    ModelList,
    ModelPatch,
)

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/models", tags=["models"])
downloads_router = APIRouter(route_class=StrictJSONRoute, prefix="/api/downloads", tags=["models"])
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
LOAD_ERRORS = error_responses(ModelNotFound, ModelLoadFailed)  # load and unload


@router.get("", response_model=ModelList, summary="Every configured, listed and cached model")
async def list_models(service: ModelServiceDep) -> dict[str, Any]:
    return {"models": service.list_models()}


@router.post(
    "",
    status_code=201,
    response_model=ModelInfo,
    responses=error_responses(Conflict),
    summary="Add a Hugging Face model to a task (persisted; loaded on first use; "
    "`default: true` makes it the task's default)",
)
async def add_model(body: AddModelRequest, service: ModelServiceDep) -> dict[str, Any]:
    return await service.add(body)


@router.post(
    "/download",
    response_model=DownloadJobOut,
    status_code=202,
    summary="Download a model into the cache; poll GET /api/downloads/{job_id} for progress",
)
async def download_model(
    body: DownloadRequest,
    service: ModelServiceDep,
    downloads: DownloadsDep,
    wait: Annotated[bool, Query(description="answer once the download has finished")] = False,
) -> dict[str, Any]:
    job = await service.download(body.model_id)
    if wait:
        job = await downloads.wait(job.id)
    return job.to_dict()


@router.post("/{model_id:path}/load", responses=LOAD_ERRORS, summary="Load a configured model now")
async def load(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    entry = registry.catalog.lookup(model_id)
    registry.health.reset(entry.id)  # an operator's load gives a failed model another chance
    await registry.ensure_loaded(entry)
    return {"id": entry.id, "loaded": True, "memory_bytes": registry.footprint(entry.id).host}


@router.post("/{model_id:path}/unload", responses=LOAD_ERRORS, summary="Unload a model")
async def unload(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    entry = registry.catalog.lookup(model_id)
    if registry.is_loaded(entry.id) or registry.is_loading(entry.id):
        await registry.unload(entry)  # returns once its processes are gone
    return {"id": entry.id, "loaded": False}


@router.get(
    "/{model_id:path}",
    response_model=ModelInfo | ModelList,
    responses=error_responses(ModelNotFound),
    summary="One model (config id or HF id), or every model of a task (embedding/caption/ocr)",
)
async def get_model(model_id: str, service: ModelServiceDep) -> dict[str, Any]:
    if Task.parse(model_id) is not None:
        return {"models": service.list_models(model_id)}
    return service.get(model_id)


@router.patch(
    "/{model_id:path}",
    response_model=ModelInfo,
    responses=error_responses(ModelNotFound),
    summary="Change a configured model's keep-alive, pinning or default status at runtime "
    "(persisted)",
)
async def patch_model(model_id: str, body: ModelPatch, service: ModelServiceDep) -> dict[str, Any]:
    return service.patch(model_id, body)


@router.delete(
    "/{model_id:path}",
    responses=error_responses(ModelNotFound, Conflict, ModelLoadFailed),
    summary="Unload a model and delete its files from the cache",
)
async def delete_model(model_id: str, service: ModelServiceDep) -> dict[str, Any]:
    return await service.delete(model_id)


def _job(downloads: DownloadsDep, job_id: str) -> Any:
    job = downloads.get(job_id) if _JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise NotFound("no such download job")
    return job


@downloads_router.get("", response_model=list[DownloadJobOut], summary="Recent download jobs")
async def list_downloads(downloads: DownloadsDep) -> list[dict[str, Any]]:
    return [job.to_dict() for job in downloads.jobs()]


def _job_route(method: str, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a route on one download job (`/api/downloads/{job_id}`)."""
    return downloads_router.api_route(
        "/{job_id}",
        methods=[method],
        response_model=DownloadJobOut,
        responses=error_responses(NotFound),
        summary=summary,
    )


@_job_route("GET", "A download's progress")
async def get_download(job_id: str, downloads: DownloadsDep) -> dict[str, Any]:
    return dict(_job(downloads, job_id).to_dict())


@_job_route("DELETE", "Cancel a download (its partial files are removed)")
async def cancel_download(job_id: str, downloads: DownloadsDep) -> dict[str, Any]:
    job = _job(downloads, job_id)
    downloads.cancel(job.id)
    return dict(job.to_dict())
