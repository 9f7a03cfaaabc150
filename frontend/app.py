"""create_app(settings): the FastAPI app, and the lifespan that owns Triton and its client."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from frontend import __version__
from frontend.caption.routes import router as caption_router
from frontend.core.config import Settings
from frontend.core.errors import install_exception_handlers
from frontend.core.middleware import RequestContextMiddleware
from frontend.embed.routes import router as embed_router
from frontend.embed.service import EmbeddingService
from frontend.health.routes import router as health_router
from frontend.models.downloads import DownloadManager
from frontend.models.lifecycle import Lifecycle
from frontend.models.manifest import load_manifest
from frontend.models.registry import ModelRegistry
from frontend.models.routes import downloads_router
from frontend.models.routes import router as models_router
from frontend.models.service import ModelService, sweep_deleted
from frontend.models.store import SettingsStore, apply_added_models
from frontend.ocr.routes import router as ocr_router
from frontend.status.routes import router as status_router
from frontend.triton.embedded import EmbeddedTriton, TritonPorts
from frontend.triton.gateway import TritonGateway
from frontend.triton.repository import write_repository

logger = logging.getLogger(__name__)


def triton_environment(settings: Settings) -> dict[str, str]:
    """What the stub processes need: the HF cache, and never a trip to the hub at load time."""
    return {
        "HF_HOME": str(settings.models_dir.resolve()),
        "HF_HUB_CACHE": str((settings.models_dir / "hub").resolve()),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    store = SettingsStore(settings.data_dir / "settings.db")
    added = apply_added_models(settings, store)
    if added:
        logger.info("models added at runtime: %s", ", ".join(added))
    sweep_deleted(settings.models_dir / "hub")
    written = write_repository(settings)
    logger.info("Triton model entries: %s", ", ".join(written) or "none")
    embedded: EmbeddedTriton | None = None
    urls = settings.triton.urls
    if not urls:
        ports = TritonPorts.choose(
            settings.triton.http_port, settings.triton.grpc_port, settings.triton.metrics_port
        )
        embedded = EmbeddedTriton(
            repositories=[settings.triton_repository_dir.resolve()],
            work_dir=(settings.data_dir / "triton").resolve(),
            ports=ports,
            env=triton_environment(settings),
            log_verbose=settings.triton.log_verbose,
        )
        await embedded.start(settings.triton.startup_timeout_seconds)
        urls = [embedded.grpc_url]
    gateway = TritonGateway(
        urls,
        infer_timeout=settings.triton.inference_timeout_seconds,
        load_timeout=settings.triton.load_timeout_seconds,
    )
    registry = ModelRegistry(settings, gateway, store)
    lifecycle = Lifecycle(settings, registry)
    lifecycle.start()
    downloads = DownloadManager(
        settings.models_dir / "hub",
        endpoint=settings.hub.endpoint,
        etag_timeout=settings.hub.etag_timeout_seconds,
        max_concurrent=settings.hub.max_concurrent_downloads,
    )
    app.state.downloads = downloads
    app.state.model_service = ModelService(
        settings, registry, lifecycle, store, downloads, load_manifest()
    )
    app.state.lifecycle = lifecycle
    app.state.started_at = time.time()
    app.state.embedded_triton = embedded
    app.state.gateway = gateway
    app.state.registry = registry
    app.state.embedding = EmbeddingService(registry, settings.limits)
    try:
        yield
    finally:
        downloads.shutdown()
        await lifecycle.stop()
        await gateway.close()
        if embedded is not None:
            await embedded.stop()
        store.close()


def create_app(settings: Settings) -> FastAPI:
    settings = settings.model_copy(deep=True)  # models added at runtime go into this copy
    app = FastAPI(
        title="Homelab AI",
        version=__version__,
        description="Self-hosted AI services on NVIDIA Triton. Errors use one envelope.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.limits.max_body_bytes)
    install_exception_handlers(app)
    app.include_router(health_router)
    app.include_router(embed_router)
    app.include_router(caption_router)
    app.include_router(ocr_router)
    app.include_router(status_router)
    app.include_router(models_router)
    app.include_router(downloads_router)
    return app
