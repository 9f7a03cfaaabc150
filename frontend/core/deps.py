"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from frontend.embed.service import EmbeddingService
from frontend.models.downloads import DownloadManager
from frontend.models.lifecycle import Lifecycle
from frontend.models.registry import ModelRegistry
from frontend.models.service import ModelService
from frontend.rerank.service import RerankService
from frontend.triton.gateway import TritonGateway


async def get_gateway(request: Request) -> TritonGateway:
    return request.app.state.gateway


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_embedding_service(request: Request) -> EmbeddingService:
    return request.app.state.embedding


async def get_rerank_service(request: Request) -> RerankService:
    return request.app.state.rerank


async def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle


async def get_model_service(request: Request) -> ModelService:
    return request.app.state.model_service


async def get_downloads(request: Request) -> DownloadManager:
    return request.app.state.downloads


GatewayDep = Annotated[TritonGateway, Depends(get_gateway)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
EmbeddingServiceDep = Annotated[EmbeddingService, Depends(get_embedding_service)]
RerankServiceDep = Annotated[RerankService, Depends(get_rerank_service)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ModelServiceDep = Annotated[ModelService, Depends(get_model_service)]
DownloadsDep = Annotated[DownloadManager, Depends(get_downloads)]
