"""Explicit model load and unload: POST /api/models/{id}/load and /unload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from frontend.core.config import ModelEntry
from frontend.core.deps import RegistryDep
from frontend.core.errors import MODEL_NOT_FOUND, APIError
from frontend.core.openapi import ERROR_RESPONSES
from frontend.models.registry import ModelRegistry

router = APIRouter(prefix="/api/models", tags=["models"])


def _find(registry: ModelRegistry, model_id: str) -> ModelEntry:
    entry = registry.find(model_id)
    if entry is None:
        raise APIError(
            404,
            MODEL_NOT_FOUND,
            f"model '{model_id[:100]}' is not an enabled model",
            {"model_id": model_id[:100]},
        )
    return entry


@router.post("/{model_id:path}/load", responses=ERROR_RESPONSES, summary="Load a model now")
async def load(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    entry = _find(registry, model_id)
    await registry.ensure_loaded(entry)
    return {"id": entry.id, "loaded": True, "memory_bytes": registry.memory_bytes(entry.id)}


@router.post("/{model_id:path}/unload", responses=ERROR_RESPONSES, summary="Unload a model")
async def unload(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    entry = _find(registry, model_id)
    if registry.is_loaded(entry.id):
        await registry.unload(entry)  # returns once its processes are gone
    return {"id": entry.id, "loaded": False}
