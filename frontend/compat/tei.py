"""Hugging Face Text Embeddings Inference's routes: POST /embed, POST /rerank, GET /info.

TEI serves one model per server, so these use the default model of their task. TEI's own
defaults are kept: /embed normalizes, /rerank refuses over-long pairs unless `truncate`.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from frontend import __version__
from frontend.core.config import Task
from frontend.core.deps import EmbeddingServiceDep, RegistryDep, RerankServiceDep
from frontend.core.errors import json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.embed.routes import numpy_json

router = APIRouter(route_class=StrictJSONRoute, tags=["tei"])


class TeiEmbedRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # prompt_name, truncation_direction: unused

    inputs: StrictStr | list[StrictStr]
    normalize: StrictBool = Field(default=True, description="L2-normalize each vector")
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


class TeiInfo(BaseModel):
    model_id: str
    model_sha: str | None
    model_dtype: str
    model_type: dict[str, object]
    max_client_batch_size: int
    max_input_length: int | None
    version: str


@router.post(
    "/embed",
    response_model=list[list[float]],
    responses=error_responses(*INFERENCE_ERRORS),
    summary="TEI's embed: vectors of the default embedding model",
)
async def embed(body: TeiEmbedRequest, service: EmbeddingServiceDep) -> Response:
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    done = await service.embed_counted(texts, None, dimensions=body.dimensions)
    vectors = done.vectors
    if body.normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
    return numpy_json(vectors)


@router.post(
    "/rerank",
    response_model=list[TeiRank],
    responses=error_responses(*INFERENCE_ERRORS),
    summary="TEI's rerank: the default reranker's scores, best first",
)
async def rerank(body: TeiRerankRequest, service: RerankServiceDep) -> Response:
    ranked = await service.rerank(body.query, body.texts, None, body.truncate)
    values = ranked.logits if body.raw_scores else ranked.scores
    results = []
    for index in ranked.order(body.raw_scores):
        item: dict[str, object] = {"index": index, "score": float(values[index])}
        if body.return_text:
            item["text"] = body.texts[index]
        results.append(item)
    return json_response(results)


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
