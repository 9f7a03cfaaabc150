"""GET /metrics: the frontend's Prometheus metrics (Triton serves its own on its metrics port)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (open unless security.metrics_require_auth)",
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
