"""Cohere's embed: POST /v2/embed (the cohere SDK's ClientV2.embed, LangChain's CohereEmbeddings)
and POST /v1/embed (Client.embed). Texts on a text embedding model; texts and images (`images`
data: URLs, `image_url` inputs) on an image_embedding model (CLIP, SigLIP), in one space.
`input_type` is accepted and not used (models here carry their own prompts). Embedding types:
`float`, `base64` (float32 little-endian bytes), and the 1-bit `binary` (signed) and `ubinary`
(unsigned) packings, as Cohere defines them."""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.compat.embed_inputs import ImageInput, Item, embed_items
from frontend.core.deps import EmbeddingServiceDep
from frontend.core.errors import InvalidRequest, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.versions import add_versioned_routes
from frontend.embed.routes import numpy_json

router = APIRouter(route_class=StrictJSONRoute, tags=["cohere"])
EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]
SERVED_TYPES = ("float", "base64", "binary", "ubinary")


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: StrictStr = Field(description="A data: URL (or an http(s) URL)")


class Content(BaseModel):
    """One part of an input: `{type: text, text}` or `{type: image_url, image_url: {url}}`."""

    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: StrictStr | None = None
    image_url: ImageUrl | StrictStr | None = None


class EmbedInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: list[Content]


class CohereEmbedRequest(BaseModel):
    """Unknown fields (max_tokens, priority, ...) are ignored, as Cohere clients send more."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"model": "minilm", "texts": ["hello", "homelab"], "input_type": "search_query"},
                {
                    "model": "clip",
                    "input_type": "image",
                    "images": ["data:image/png;base64,iVBORw0KGgo..."],
                    "embedding_types": ["float"],
                },
            ]
        },
    )

    model: StrictStr | None = Field(default=None, description="Config id or HF id")
    texts: list[StrictStr] | None = None
    images: list[StrictStr] | None = Field(
        default=None,
        description="Images as data: URLs, embedded by an image_embedding model (CLIP, SigLIP) "
        "into the space of its texts; decoding and limits as on /api/caption",
    )
    inputs: list[EmbedInput] | None = Field(
        default=None,
        description="One text, or one image_url, per input (a CLIP-style model embeds texts "
        "and images apart: one input cannot hold both)",
    )
    input_type: StrictStr | None = Field(
        default=None, description="`image` with images; other values are accepted, not used"
    )
    embedding_types: list[EmbeddingType] | None = Field(
        default=None, description="float (default), base64, binary, ubinary"
    )
    output_dimension: int | None = Field(default=None, gt=0, description="Matryoshka models")
    truncate: StrictStr | None = Field(default=None, description="Texts are always cut to fit")

    def items(self) -> list[Item]:
        """The texts, then the images, then the inputs, each one vector."""
        items: list[Item] = list(self.texts or [])
        items += [ImageInput(value, f"images.{i}") for i, value in enumerate(self.images or [])]
        for index, entry in enumerate(self.inputs or []):
            items.append(_input_item(entry, index))
        if not items:
            raise InvalidRequest(
                "texts: send at least one text or image",
                {"errors": [{"field": "texts", "message": "empty"}]},
            )
        if self.input_type == "image" and all(isinstance(item, str) for item in items):
            message = "input_type image needs images (data: URLs) or image_url inputs"
            raise InvalidRequest(
                f"images: {message}", {"errors": [{"field": "images", "message": message}]}
            )
        return items


def _input_item(entry: EmbedInput, index: int) -> Item:
    field = f"inputs.{index}"
    texts = [part.text for part in entry.content if part.type == "text" and part.text]
    pictures = [part for part in entry.content if part.type == "image_url"]
    if len(texts) + len(pictures) != len(entry.content) or not entry.content:
        message = "content parts are text or image_url"
    elif pictures and (texts or len(pictures) > 1):
        message = "one image per input, without text: texts and images are embedded apart"
    elif pictures:
        url = pictures[0].image_url
        if url is None:
            message = "image_url needs a url"
        else:
            value = url if isinstance(url, str) else url.url
            return ImageInput(value, f"{field}.content.0.image_url.url")
    else:
        return " ".join(texts)
    raise InvalidRequest(f"{field}: {message}", {"errors": [{"field": field, "message": message}]})


class CohereEmbedResponse(BaseModel):
    id: str = Field(description="The request id")
    embeddings: dict[str, list[Any]] | list[list[float]] = Field(
        description="by type ({float: [[...]], ...}), or a plain list on /v1 without types"
    )
    texts: list[str]
    images: list[dict[str, Any]] | None = Field(
        default=None, description="Each image's width, height, format and bit_depth"
    )
    meta: dict[str, Any]
    response_type: Literal["embeddings_by_type", "embeddings_floats"]


def _typed(vectors: np.ndarray, kind: str) -> Any:
    if kind == "float":
        return vectors
    if kind == "base64":
        little = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode() for row in little]
    bits = np.packbits(vectors > 0, axis=1)  # 8 dimensions per byte, the first the high bit
    return bits.astype(np.int16) - 128 if kind == "binary" else bits


async def cohere_embed(
    body: CohereEmbedRequest, request: Request, service: EmbeddingServiceDep, version: str
) -> Response:
    types = body.embedding_types or ["float"]
    unserved = [t for t in types if t not in SERVED_TYPES]
    if unserved:
        message = f"embedding types served here: {', '.join(SERVED_TYPES)}"
        raise InvalidRequest(
            f"embedding_types: {message}",
            {"errors": [{"field": "embedding_types", "message": message}]},
        )
    items = body.items()
    done = await embed_items(request, service, items, body.model, body.output_dimension)
    billed: dict[str, int] = {"input_tokens": done.tokens}
    if done.pictures:
        billed["images"] = len(done.pictures)
    meta = {"api_version": {"version": version}, "billed_units": billed}
    texts = [item for item in items if isinstance(item, str)]
    payload: dict[str, Any] = {"id": request_id_of(request), "texts": texts, "meta": meta}
    if done.pictures:
        payload["images"] = [
            {"width": p.width, "height": p.height, "format": f, "bit_depth": 8}
            for p, f in zip(done.pictures, done.formats, strict=True)
        ]
    if version == "1" and body.embedding_types is None:
        payload.update(embeddings=done.vectors, response_type="embeddings_floats")
    else:
        by_type = {kind: _typed(done.vectors, kind) for kind in dict.fromkeys(types)}
        payload.update(embeddings=by_type, response_type="embeddings_by_type")
    return numpy_json(payload)


add_versioned_routes(
    router,
    cohere_embed,
    CohereEmbedResponse,
    ("/v2/embed", "2", "embed_v2", "Cohere v2's embed (the cohere SDK's ClientV2.embed)"),
    (
        "/v1/embed",
        "1",
        "embed_v1",
        "Cohere v1's embed (the cohere SDK's Client.embed): floats unless types are asked",
    ),
)
