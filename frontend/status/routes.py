"""GET /api/status: service, Triton and loaded-model state for operators and the admin page."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from frontend import __version__
from frontend.core.deps import GatewayDep, LifecycleDep, RegistryDep
from frontend.core.jsonbody import StrictJSONRoute
from frontend.models import gpu
from frontend.status.history import StatusHistory

router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["status"])


@router.get("/status", summary="Service status, loaded models and their memory")
async def status(
    request: Request, gateway: GatewayDep, registry: RegistryDep, lifecycle: LifecycleDep
) -> dict[str, Any]:
    now = time.monotonic()
    embedded = request.app.state.embedded_triton
    models = []
    for entry in registry.loaded_entries():
        usage = registry.usage.get(entry.id)
        expires = lifecycle.expires_in(entry, now)
        memory, gpu_memory = registry.footprint(entry.id)
        models.append(
            {
                "id": entry.id,
                "hf_model": entry.hf_model,
                "memory_bytes": memory,
                "gpu_memory_bytes": gpu_memory,
                "pinned": registry.catalog.pinned(entry),
                "in_flight": usage.in_flight if usage else 0,
                "requests": usage.requests if usage else 0,
                "idle_seconds": round(now - usage.last_used, 1) if usage else None,
                "expires_in_seconds": None if expires is None else round(max(expires, 0.0), 1),
                "keep_alive_seconds": lifecycle.keep_alive_seconds(entry),
                "health": registry.health.get(entry.id).to_dict(),
            }
        )
    # Every model that was ever restarted or failed, loaded or not (a failed one is not).
    health = {
        model_id: {**h.to_dict(), "loaded": registry.is_loaded(model_id)}
        for model_id, h in sorted(registry.health.known().items())
        if h.restarts or h.state != "ok"
    }
    cache = request.app.state.cache
    jobs = request.app.state.jobs
    job_counts = None
    if jobs is not None:
        counts = await asyncio.to_thread(jobs.store.counts)
        job_counts = {**counts, "queue_depth": counts["queued"], "workers": jobs.workers.count}
    return {
        "version": __version__,
        "uptime_seconds": round(time.time() - request.app.state.started_at, 1),
        "triton": {
            "ready": await gateway.is_ready(),
            "mode": "embedded" if embedded is not None else "external",
            "restarts": embedded.restarts if embedded is not None else None,
            "replicas": gateway.replica_states(),
        },
        "models": models,
        "model_health": health,
        "in_flight": sum(u.in_flight for u in registry.usage.values()),
        "requests": sum(u.requests for u in registry.usage.values()),
        "traffic": request.app.state.metrics.recent.summary(),
        # jobs by status; queue_depth: jobs waiting to run (null: jobs disabled)
        "jobs": job_counts,
        "memory_budget_bytes": lifecycle.budget_bytes(),
        # hits and misses count inputs (texts, images) since this frontend started
        "cache": await cache.stats() if cache is not None else {"enabled": False},
        "gpu": {
            "available": gpu.gpu_available(),
            "memory_used_bytes": gpu.gpu_memory_used(),
            "memory_total_bytes": gpu.gpu_memory_total(),
            "budget_bytes": lifecycle.gpu_budget_bytes(),
        },
    }


class LatencySeries(BaseModel):
    p50: list[float | None] = Field(description="median latency per point, ms")
    p95: list[float | None] = Field(description="95th percentile latency per point, ms")


class StatusHistoryOut(BaseModel):
    """Columns of equal length, oldest point first; null where nothing was measured."""

    interval_seconds: float = Field(description="seconds between points (10)")
    capacity: int = Field(description="points kept (360: the last hour)")
    t: list[float] = Field(description="each point's end, seconds since the epoch")
    requests_per_second: list[float]
    server_errors_per_second: list[float] = Field(description="5xx answers per second")
    client_errors_per_second: list[float] = Field(description="4xx answers per second")
    latency_ms: dict[str, LatencySeries] = Field(
        description="per route family: embed, rerank, vision, ocr, crawl, jobs, models, other"
    )
    model_memory_bytes: dict[str, list[int | None]] = Field(
        description="host memory (PSS) of each model's processes; null while not loaded"
    )
    gpu_memory_used_bytes: list[int | None] | None = Field(
        description="GPU memory in use on this host; null without a GPU"
    )


@router.get(
    "/status/history",
    summary="The last hour at 10 s resolution: rates, latency per route family, memory",
    response_model=StatusHistoryOut,
)
async def status_history(request: Request) -> dict[str, Any]:
    history: StatusHistory = request.app.state.history
    return history.to_json()
