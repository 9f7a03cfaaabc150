"""Kubernetes probes: /health (process alive) and /ready (Triton reachable and ready)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from frontend.core.deps import GatewayDep
from frontend.core.errors import json_response

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the frontend process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: Triton is reachable and ready (503 while shutting down)",
    responses={503: {"description": "not ready: Triton is not reachable, or draining"}},
)
async def ready(request: Request, gateway: GatewayDep) -> Response:
    if request.app.state.drain.draining:  # shutting down: take this instance out of rotation
        return json_response({"status": "draining", "triton": None}, 503)
    triton_ready = await gateway.is_ready()
    status = 200 if triton_ready else 503
    body = {"status": "ready" if triton_ready else "not_ready", "triton": triton_ready}
    return json_response(body, status)
