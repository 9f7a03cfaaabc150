"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from frontend.embed.service import EmbeddingService
from frontend.models.downloads import DownloadManager
from frontend.models.lifecycle import Lifecycle
from frontend.models.registry import ModelRegistry
from frontend.models.service import ModelService
from frontend.rerank.service import RerankService
from frontend.triton.gateway import TritonGateway


def _from_state(attribute: str) -> Any:
    """A dependency answering the app's `state.<attribute>` (set up by the lifespan)."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    dependency.__name__ = dependency.__qualname__ = f"get_{attribute}"
    return Depends(dependency)


GatewayDep = Annotated[TritonGateway, _from_state("gateway")]
RegistryDep = Annotated[ModelRegistry, _from_state("registry")]
EmbeddingServiceDep = Annotated[EmbeddingService, _from_state("embedding")]
RerankServiceDep = Annotated[RerankService, _from_state("rerank")]
LifecycleDep = Annotated[Lifecycle, _from_state("lifecycle")]
ModelServiceDep = Annotated[ModelService, _from_state("model_service")]
DownloadsDep = Annotated[DownloadManager, _from_state("downloads")]
