"""POST /api/rerank (ours) and the Cohere/Jina-shaped POST /v1/rerank and /v2/rerank."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from frontend.core.deps import RerankServiceDep
from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.core.versions import add_versioned_routes
from frontend.models.lifecycle import parse_keep_alive
from frontend.rerank.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    RerankRequest,
    RerankResponse,
)

router = APIRouter(route_class=StrictJSONRoute, tags=["rerank"])


@router.post(
    "/api/rerank",
    response_model=RerankResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Rank documents by relevance to a query (cross-encoder)",
)
async def rerank(body: RerankRequest, request: Request, service: RerankServiceDep) -> Response:
    started = time.perf_counter()
    ranked = await service.rerank(
        body.query,
        body.documents,
        body.model,
        body.truncate,
        parse_keep_alive(body.keep_alive),
    )
    results: list[dict[str, Any]] = []
    for index, score in ranked.best(body.raw_scores, body.top_n):
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if body.return_documents:
            result["document"] = body.documents[index]
        results.append(result)
    return json_response(
        {
            "request_id": request_id_of(request),
            "model_used": ranked.entry.id,
            "results": results,
            "usage": {"total_tokens": int(ranked.tokens.sum())},
            "processing_time_ms": round((time.perf_counter() - started) * 1000, 2),
        }
    )


async def cohere_rerank(
    body: CohereRerankRequest, request: Request, service: RerankServiceDep, version: str
) -> Response:
    texts = body.texts()
    ranked = await service.rerank(body.query, texts, body.model, body.truncate)
    with_documents = body.return_documents
    if with_documents is None:
        with_documents = version == "1"
    results: list[dict[str, Any]] = []
    for index, score in ranked.best(body.raw_scores, body.top_n):
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if with_documents:
            result["document"] = {"text": texts[index]}
        results.append(result)
    return json_response(
        {
            "id": request_id_of(request),
            "model": body.model or ranked.entry.id,
            "results": results,
            "usage": {"total_tokens": int(ranked.tokens.sum())},
            "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1}},
        }
    )


add_versioned_routes(
    router,
    cohere_rerank,
    CohereRerankResponse,
    (
        "/v1/rerank",
        "1",
        "rerank_v1",
        "Rerank in Jina's and Cohere v1's shape (documents returned by default)",
    ),
    (
        "/v2/rerank",
        "2",
        "rerank_v2",
        "Rerank in Cohere v2's shape (the cohere SDK's ClientV2.rerank)",
    ),
)
