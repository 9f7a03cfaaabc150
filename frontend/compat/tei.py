"""Hugging Face Text Embeddings Inference's routes: POST /embed, POST /rerank, GET /info, and
POST / (where Hugging Face's InferenceClient, and so langchain-huggingface, sends a TEI URL).

TEI serves one model per server, so these use the default model of their task. TEI's own
defaults are kept: /embed normalizes, /rerank refuses over-long pairs unless `truncate`.
`normalize: false` gives TEI's pooled vector: the model's, before its own Normalize module.
POST /rerank also takes Infinity's body (Cohere's: `documents`) and answers as Infinity does,
so clients of Infinity's /rerank (LiteLLM's `infinity/` models) work here too.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictStr, Tag

from frontend import __version__
from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, RegistryDep, RerankServiceDep
from frontend.core.errors import json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json
from frontend.embed.service import EmbeddingService
from frontend.rerank.schemas import CohereRerankRequest
from frontend.rerank.service import RerankService

router = APIRouter(route_class=StrictJSONRoute, tags=["tei"])


class TeiEmbedRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # prompt_name, truncation_direction: unused

    inputs: StrictStr | list[StrictStr]
    normalize: StrictBool = Field(
        default=True,
        description="L2-normalize each vector; false: the pooled vector, before the model's "
        "own normalization (as TEI returns it)",
    )
    truncate: StrictBool = Field(default=False, description="Texts are always cut to fit")
    dimensions: int | None = Field(default=None, gt=0, description="Matryoshka models only")


class TeiRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: StrictStr
    texts: list[StrictStr]
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    truncate: StrictBool = Field(default=False, description="false: over-long pairs get 400")


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class InfinityRank(BaseModel):
    relevance_score: float
    index: int
    document: str | None = Field(default=None, description="With return_documents")


class InfinityUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class InfinityRerankResponse(BaseModel):
    object: Literal["rerank"]
    results: list[InfinityRank]
    model: str
    usage: InfinityUsage
    id: str = Field(description="The request id")
    created: int


class TeiInfo(BaseModel):
    model_id: str
    model_sha: str | None
    model_dtype: str
    model_type: dict[str, object]
    max_client_batch_size: int
    max_input_length: int | None
    version: str


def _shape(body: Any) -> str:
    """Which request a body is: TEI's embed, TEI's rerank (`texts`) or Cohere's (`documents`).
    Anything else is validated as the likeliest one, so its errors name the right fields."""
    if not isinstance(body, dict) or "query" not in body:
        return "embed"
    return "cohere" if "documents" in body and "texts" not in body else "rerank"


AnyRerankRequest = Annotated[
    Annotated[TeiRerankRequest, Tag("rerank")] | Annotated[CohereRerankRequest, Tag("cohere")],
    Discriminator(_shape),
]
AnyTeiRequest = Annotated[
    Annotated[TeiEmbedRequest, Tag("embed")]
    | Annotated[TeiRerankRequest, Tag("rerank")]
    | Annotated[CohereRerankRequest, Tag("cohere")],
    Discriminator(_shape),
]


async def _embed(body: TeiEmbedRequest, service: EmbeddingService) -> Response:
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    pooled = not body.normalize
    done = await service.embed_counted(texts, None, dimensions=body.dimensions, pooled=pooled)
    vectors = done.vectors
    if body.normalize:  # models without a Normalize module of their own too
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
    return numpy_json(vectors)


async def _rerank(body: TeiRerankRequest, service: RerankService) -> Response:
    ranked = await service.rerank(body.query, body.texts, None, body.truncate)
    results = []
    for index, score in ranked.best(body.raw_scores):
        item: dict[str, object] = {"index": index, "score": score}
        if body.return_text:
            item["text"] = body.texts[index]
        results.append(item)
    return json_response(results)


async def _infinity_rerank(
    body: CohereRerankRequest, request: Request, service: RerankService
) -> Response:
    """Infinity's /rerank answer: Cohere's results, but `document` is the text itself."""
    texts = body.texts()
    ranked = await service.rerank(body.query, texts, body.model, body.truncate)
    results: list[dict[str, Any]] = []
    for index, score in ranked.best(body.raw_scores, body.top_n):
        item: dict[str, Any] = {"relevance_score": score, "index": index}
        if body.return_documents:
            item["document"] = texts[index]
        results.append(item)
    tokens = int(ranked.tokens.sum())
    return json_response(
        {
            "object": "rerank",
            "results": results,
            "model": body.model or ranked.entry.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": request_id_of(request),
            "created": int(time.time()),
        }
    )


@router.post(
    "/embed",
    response_model=list[list[float]],
    responses=error_responses(*INFERENCE_ERRORS),
    summary="TEI's embed: vectors of the default embedding model",
)
async def embed(body: TeiEmbedRequest, service: EmbeddingServiceDep) -> Response:
    return await _embed(body, service)


@router.post(
    "/rerank",
    response_model=list[TeiRank] | InfinityRerankResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="TEI's rerank (`texts`: a list of scores, best first); with `documents` instead, "
    "Infinity's rerank (Cohere's request; documents returned only if asked, as strings)",
)
async def rerank(body: AnyRerankRequest, request: Request, service: RerankServiceDep) -> Response:
    if isinstance(body, CohereRerankRequest):
        return await _infinity_rerank(body, request, service)
    return await _rerank(body, service)


@router.post(
    "/",
    response_model=list[list[float]] | list[TeiRank] | InfinityRerankResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="TEI's root route (Hugging Face's InferenceClient): an embed body embeds, a "
    "rerank body (`query`) reranks",
)
async def predict(
    body: AnyTeiRequest,
    request: Request,
    embedder: EmbeddingServiceDep,
    reranker: RerankServiceDep,
) -> Response:
    if isinstance(body, TeiEmbedRequest):
        return await _embed(body, embedder)
    if isinstance(body, CohereRerankRequest):
        return await _infinity_rerank(body, request, reranker)
    return await _rerank(body, reranker)


@router.get("/info", response_model=TeiInfo, summary="TEI's info: the default embedding model")
async def info(request: Request, registry: RegistryDep) -> Response:
    found = registry.catalog.find(None, Task.TEXT_EMBEDDING)
    reranker = registry.catalog.find(None, Task.RERANK)
    model_type: dict[str, object] = {"embedding": {"pooling": "model"}}
    if reranker is not None:
        model_type["reranker"] = {"model_id": reranker.entry.hf_model}
    settings = request.app.state.settings
    return json_response(
        {
            "model_id": found.entry.hf_model if found is not None else "",
            "model_sha": None,
            "model_dtype": "float32",
            "model_type": model_type,
            "max_client_batch_size": settings.limits.max_texts_per_request,
            "max_input_length": None,
            "version": __version__,
        }
    )
