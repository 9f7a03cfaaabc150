"""create_app(settings): the FastAPI app, and the lifespan that owns Triton, its client and
the crawl browser."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware import Middleware

from frontend import __version__
from frontend.admin.routes import router as admin_router
from frontend.admin.routes import static_mount
from frontend.cache.middleware import CacheMiddleware
from frontend.cache.openapi import document_cache
from frontend.cache.service import ResultCache
from frontend.compat.cohere import router as cohere_router
from frontend.compat.documents import router as documents_router
from frontend.compat.firecrawl import router as firecrawl_router
from frontend.compat.firecrawl_errors import FirecrawlErrorMiddleware, document_firecrawl_errors
from frontend.compat.firecrawl_jobs import router as firecrawl_jobs_router
from frontend.compat.firecrawl_v1 import router as firecrawl_v1_router
from frontend.compat.immich import router as immich_router
from frontend.compat.ollama import router as ollama_router
from frontend.compat.ollama_chat import router as ollama_chat_router
from frontend.compat.ollama_models import OllamaErrorMiddleware, document_ollama_errors
from frontend.compat.ollama_models import router as ollama_models_router
from frontend.compat.openai import router as openai_router
from frontend.compat.openai import unprefixed_router as infinity_router
from frontend.compat.openai_chat import router as openai_chat_router
from frontend.compat.openai_errors import OpenAIErrorMiddleware, document_openai_errors
from frontend.compat.tei import router as tei_router
from frontend.compat.tika import router as tika_router
from frontend.compat.weaviate import router as weaviate_router
from frontend.core.config import Settings
from frontend.core.cors import cors_middleware
from frontend.core.errors import install_exception_handlers
from frontend.core.hosts import HostCheckMiddleware, HostPolicy
from frontend.core.middleware import RequestContextMiddleware
from frontend.core.observability import Metrics, ObservabilityMiddleware, route_patterns
from frontend.core.openapi import complete_openapi
from frontend.core.security import Security, SecurityMiddleware
from frontend.core.shutdown import Drain, DrainMiddleware
from frontend.crawl.batch import router as batch_router
from frontend.crawl.policy import Resolver, system_resolver
from frontend.crawl.routes import router as crawl_router
from frontend.crawl.service import CrawlService
from frontend.embed.routes import router as embed_router
from frontend.embed.service import EmbeddingService
from frontend.health.metrics import router as metrics_router
from frontend.health.routes import router as health_router
from frontend.images.routes import router as images_router
from frontend.jobs.middleware import JobsMiddleware
from frontend.jobs.openapi import document_async
from frontend.jobs.routes import router as jobs_router
from frontend.jobs.service import JobService
from frontend.models import gpu
from frontend.models.catalog import ModelCatalog
from frontend.models.disk import sweep_deleted
from frontend.models.downloads import DownloadManager
from frontend.models.lifecycle import Lifecycle
from frontend.models.manifest import load_manifest
from frontend.models.registry import ModelRegistry
from frontend.models.routes import downloads_router
from frontend.models.routes import router as models_router
from frontend.models.service import ModelService
from frontend.models.store import SettingsStore
from frontend.rerank.routes import router as rerank_router
from frontend.rerank.service import RerankService
from frontend.sandbox.pool import close_sandbox
from frontend.status.history import StatusHistory
from frontend.status.routes import router as status_router
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, triton_environment
from frontend.triton.gateway import TritonGateway
from frontend.triton.repository import write_repository

logger = logging.getLogger(__name__)
ROUTERS = [
    health_router,
    metrics_router,
    embed_router,
    rerank_router,
    openai_router,
    openai_chat_router,
    infinity_router,
    cohere_router,
    ollama_router,
    ollama_chat_router,
    ollama_models_router,
    tei_router,
    weaviate_router,
    immich_router,
    images_router,
    tika_router,
    documents_router,
    status_router,
    models_router,
    downloads_router,
    crawl_router,
    batch_router,
    firecrawl_router,
    firecrawl_jobs_router,
    firecrawl_v1_router,
    jobs_router,
    admin_router,
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    store = SettingsStore(settings.data_dir / "settings.db")
    catalog = ModelCatalog(settings, store)  # config.yaml's models and those added at runtime
    if catalog.added:
        logger.info("models added at runtime: %s", ", ".join(catalog.added))
    sweep_deleted(settings.models_dir / "hub")
    written = write_repository(settings, catalog.all(enabled=False))
    logger.info("Triton model entries: %s", ", ".join(written) or "none")
    embedded: EmbeddedTriton | None = None
    urls = settings.triton.urls
    admin_key = settings.triton.admin_key
    if not urls:
        ports = TritonPorts.choose(
            settings.triton.http_port,
            settings.triton.grpc_port,
            settings.triton.metrics_port,
            avoid=frozenset({settings.server.port}),
        )
        # Load/unload need this key; inference stays open (power users, other tools).
        admin_key = admin_key or secrets.token_urlsafe(32)
        embedded = EmbeddedTriton(
            repositories=[settings.triton_repository_dir.resolve()],
            work_dir=(settings.data_dir / "triton").resolve(),
            ports=ports,
            env=triton_environment(settings),
            log_verbose=settings.triton.log_verbose,
            admin_key=admin_key,
        )
        await embedded.start(settings.triton.startup_timeout_seconds)
        urls = [embedded.grpc_url]
    gateway = TritonGateway(
        urls,
        infer_timeout=settings.triton.inference_timeout_seconds,
        load_timeout=settings.triton.load_timeout_seconds,
        admin_key=admin_key,
    )
    metrics: Metrics = app.state.metrics
    # LRU eviction before each load: the lifecycle's policy, built on the registry below.
    registry = ModelRegistry(
        settings,
        gateway,
        store,
        metrics,
        make_room=lambda entry: lifecycle.make_room(entry),
        catalog=catalog,
    )
    if embedded is not None:
        registry.doctor.on_stuck = embedded.restart
        registry.server_back = embedded.wait_back
    metrics.watch(lambda: [e.id for e in registry.loaded_entries()], gpu.gpu_memory_used)
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
    # The result cache (None: cache.enabled false): keys carry the revision each model's
    # outputs come from, so a new download never answers with the old weights' results.
    cache = (
        ResultCache(settings.cache, metrics.registry, registry.revision)
        if settings.cache.enabled
        else None
    )
    app.state.cache = cache
    app.state.embedding = EmbeddingService(registry, settings.limits, cache)
    app.state.rerank = RerankService(registry, settings.limits, cache)
    # The browser starts on the first crawl.
    app.state.crawl = CrawlService(settings.crawl, app.state.crawl_resolver)
    await app.state.crawl.start()
    jobs = start_jobs(app, settings)
    history = start_history(app, registry)
    try:
        yield
    finally:
        history.cancel()
        metrics.listeners.remove(app.state.history.record)
        await stop_jobs(app, jobs)
        await close_sandbox(app)
        downloads.shutdown()
        if cache is not None:
            await cache.close()
        await app.state.crawl.stop()
        await lifecycle.stop()
        await gateway.close()
        if embedded is not None:
            await embedded.stop()
        store.close()


def start_history(app: FastAPI, registry: ModelRegistry) -> asyncio.Task[None]:
    """The Status tab's charts: every request into app.state.history, a sample every 10 s."""
    history: StatusHistory = app.state.history
    app.state.metrics.listeners.append(history.record)

    def gauges() -> tuple[dict[str, int], int | None]:
        memory = {e.id: registry.footprint(e.id).host for e in registry.loaded_entries()}
        return memory, gpu.gpu_memory_used()

    return asyncio.create_task(history.run(gauges))


def start_jobs(app: FastAPI, settings: Settings) -> asyncio.Task[None] | None:
    """The job service, its worker threads and its recovery sweep (None: jobs disabled)."""
    if not settings.jobs.enabled:
        return None
    jobs = JobService(
        settings,
        app,
        app.state.crawl_resolver,
        lambda owner: app.state.security.policy.webhook_secret(owner),
        app.state.metrics.registry,
    )
    app.state.jobs = jobs
    jobs.start(asyncio.get_running_loop())

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(max(settings.jobs.lease_seconds / 2, 0.25))
            try:
                await asyncio.to_thread(jobs.sweep)
            except Exception:  # the broker may be down for a while: try again next time
                logger.exception("job sweep failed")

    return asyncio.create_task(sweep_forever())


async def stop_jobs(app: FastAPI, sweeper: asyncio.Task[None] | None) -> None:
    jobs: JobService | None = getattr(app.state, "jobs", None)
    if sweeper is None or jobs is None:
        return
    sweeper.cancel()
    await asyncio.to_thread(jobs.stop)
    app.state.jobs = None


def create_app(settings: Settings, crawl_resolver: Resolver = system_resolver) -> FastAPI:
    """The app; `crawl_resolver` answers the crawler's DNS lookups (tests put a fake one in)."""
    settings = settings.model_copy(deep=True)  # the app's own: later changes by the caller stay out
    # In the order a request meets them, outermost first: every error under /v1/ (the
    # security checks' too) in OpenAI's shape, under Firecrawl's /v2/ paths in Firecrawl's,
    # under Ollama's chat and model paths in Ollama's;
    # request id and body limit; metrics and the access log (so refusals are counted); the
    # Host check (DNS rebinding); CORS, if configured (preflights answered before the key
    # check, which browsers never pass them); the shutdown drain; the security checks; the
    # result cache's Cache-Control and X-Cache.
    middleware = [
        Middleware(OpenAIErrorMiddleware),
        Middleware(FirecrawlErrorMiddleware),
        Middleware(OllamaErrorMiddleware),
        Middleware(RequestContextMiddleware, max_body_bytes=settings.limits.max_body_bytes),
        Middleware(ObservabilityMiddleware),
        Middleware(
            HostCheckMiddleware,
            policy=HostPolicy(settings.server.host, settings.server.allowed_hosts),
        ),
        *cors_middleware(settings.server.cors_allow_origins),
        Middleware(DrainMiddleware),
        Middleware(SecurityMiddleware),
        Middleware(JobsMiddleware),  # `Prefer: respond-async`: after the checks, the caller's job
        Middleware(CacheMiddleware),
    ]
    app = FastAPI(
        title="Homelab AI",
        version=__version__,
        description="Self-hosted AI services on NVIDIA Triton. Errors use one envelope.",
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.settings = settings
    app.state.crawl_resolver = crawl_resolver
    app.state.metrics = Metrics()
    app.state.history = StatusHistory()  # the lifespan fills it
    app.state.security = Security(settings.security)
    app.state.drain = Drain()
    app.state.cache = None  # the lifespan makes it (cache.enabled)
    app.state.jobs = None
    install_exception_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    admin_static = static_mount()
    app.router.routes.append(admin_static)
    app.state.route_patterns = route_patterns(
        [*(r for router in ROUTERS for r in router.routes), admin_static]
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_async(
                document_cache(
                    document_ollama_errors(
                        document_firecrawl_errors(
                            document_openai_errors(
                                complete_openapi(
                                    get_openapi(
                                        title=app.title,
                                        version=app.version,
                                        description=app.description,
                                        routes=app.routes,
                                    ),
                                    app.state.security.policy,
                                )
                            )
                        )
                    )
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
