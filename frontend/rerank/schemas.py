"""Request and response shapes of POST /api/rerank and the Cohere/Jina-shaped /v1 and /v2."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from frontend.embed.schemas import KEEP_ALIVE_DOC


class RerankRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query": "what is a homelab?",
                    "documents": ["A server at home.", "A recipe for bread."],
                    "top_n": 1,
                }
            ]
        },
    )

    query: StrictStr = Field(description="What the documents are ranked against")
    documents: list[StrictStr] = Field(description="1..limits.max_rerank_documents texts to rank")
    model: StrictStr | None = Field(
        default=None, description="Config id or HF id; the default reranker if omitted"
    )
    top_n: int | None = Field(default=None, ge=1, description="Return only the best N")
    return_documents: StrictBool = Field(default=False, description="Include each text")
    raw_scores: StrictBool = Field(
        default=False, description="The classifier's logits instead of the model's activation"
    )
    truncate: StrictBool = Field(
        default=True,
        description="Cut pairs longer than the model reads (true) or refuse them with 400",
    )
    keep_alive: float | StrictStr | None = Field(default=None, description=KEEP_ALIVE_DOC)


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request")
    relevance_score: float
    document: str | None = Field(default=None, description="With return_documents only")


class Usage(BaseModel):
    total_tokens: int = Field(description="Tokens the model read, over all pairs")


class RerankResponse(BaseModel):
    request_id: str
    model_used: str
    results: list[RerankResult] = Field(description="Best first")
    usage: Usage
    processing_time_ms: float


class DocumentObject(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: StrictStr


class CohereRerankRequest(BaseModel):
    """Cohere's (/v2/rerank, v1) and Jina's (/v1/rerank) request. Unknown fields (such as
    Cohere's max_tokens_per_doc or rank_fields) are ignored: clients send more than we use."""

    model_config = ConfigDict(extra="ignore")

    query: StrictStr
    documents: list[StrictStr | DocumentObject]
    model: StrictStr | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: StrictBool | None = Field(
        default=None, description="Default: true on /v1/rerank (Jina), false on /v2 (Cohere)"
    )
    raw_scores: StrictBool = False
    truncate: StrictBool = True

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class CohereDocument(BaseModel):
    text: str


class CohereResult(BaseModel):
    index: int
    relevance_score: float
    document: CohereDocument | None = None


class CohereMeta(BaseModel):
    api_version: dict[str, str]
    billed_units: dict[str, int]


class CohereRerankResponse(BaseModel):
    id: str = Field(description="The request id")
    model: str
    results: list[CohereResult]
    usage: Usage
    meta: CohereMeta
