"""Kubernetes probes: /health (process alive) and /ready (Triton reachable and ready)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from frontend.core.deps import GatewayDep
from frontend.core.errors import json_response
from frontend.triton.gateway import TritonGateway

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
    state = await readiness(request, gateway)
    triton = None if state == "draining" else state == "ready"
    return json_response({"status": state, "triton": triton}, 200 if state == "ready" else 503)


async def readiness(request: Request, gateway: TritonGateway) -> str:
    """ "ready", "not_ready" (Triton unreachable or not ready) or "draining" (shutting down:
    out of rotation): what every readiness probe answers from."""
    if request.app.state.drain.draining:
        return "draining"
    return "ready" if await gateway.is_ready() else "not_ready"
