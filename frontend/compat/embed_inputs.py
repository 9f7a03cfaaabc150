"""Texts and images of one embedding request, in their order, through one model (what the
OpenAI/Infinity/Jina and Cohere dialects share): texts alone go to the text embedding model
they name; with images, or naming an image_embedding model (CLIP, SigLIP), both go through
that model's two towers into one space. Images come as data: URLs or base64, or as http(s)
URLs fetched through the crawler's filtering proxy (its address policy, every hop)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import numpy as np
from fastapi import Request

from frontend.compat.chat_common import decode_base64_image, fetch_image, field_error
from frontend.core.config import ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.crawl.policy import CrawlPolicy, TargetRefused, parse_ip
from frontend.embed import images
from frontend.embed.images import Picture
from frontend.embed.routes import model_name, timed_embed
from frontend.embed.service import EmbeddingService, check_texts, shorten
from frontend.images.clip_inputs import Geometry

_DATA_IMAGE = re.compile(r"^data:image/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
# Magic bytes of the formats the decoder reads (frontend.images.decode.SUPPORTED_FORMATS).
_FORMATS = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF8", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


REFUSED = "the URL's address may not be fetched (crawl.allowed_hosts opens it)"


@dataclass(frozen=True)
class ImageInput:
    """An image as sent: a data: URL, base64, or an http(s) URL; `field` names it in errors."""

    value: str
    field: str


Item = str | ImageInput


@dataclass(frozen=True)
class EmbeddedItems:
    entry: ModelEntry
    vectors: np.ndarray  # float32 [items, dimensions], in the request's order
    tokens: int  # tokens read from the texts (0 through an image model: not counted there)
    pictures: list[Picture]  # the images' decoded sizes, in their order
    formats: list[str]  # the images' formats (jpeg, png, ...), in their order


def image_format(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((name for magic, name in _FORMATS if data.startswith(magic)), "unknown")


def _refused_literal(request: Request, url: str) -> bool:
    """An IP literal the address policy refuses, named before any connection (the proxy
    refuses it too, and every name and redirect hop: it stays the one that decides)."""
    policy: CrawlPolicy = request.app.state.crawl.policy
    try:
        host = policy.parse(url).host
    except TargetRefused:
        return False  # the fetch names it
    literal = parse_ip(host)
    return literal is not None and policy.check_address(host, literal) is not None


async def image_bytes(request: Request, image: ImageInput) -> bytes:
    """The undecoded file of one image input (400 naming its field when unusable)."""
    text = image.value.strip()
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        if _refused_literal(request, text):
            raise field_error(image.field, REFUSED)
        max_bytes = request.app.state.settings.limits.max_body_bytes
        return await fetch_image(request, text, image.field, max_bytes)
    if lowered.startswith("data:") and not _DATA_IMAGE.match(text):
        raise field_error(image.field, "a data: URL must be data:image/<type>;base64,<data>")
    if not lowered.startswith("data:") and ":" in text[:64]:  # base64 has no ':'
        raise field_error(
            image.field, "must be a data: URL, an http(s) URL or base64 of an image file"
        )
    return decode_base64_image(text, image.field)


def is_image_model(service: EmbeddingService, model: str | None) -> bool:
    """Whether the model named is an image_embedding model (not also a text embedding one)."""
    catalog = service.registry.catalog
    named = model_name(model)
    return (
        named is not None
        and catalog.find(named, Task.TEXT_EMBEDDING) is None
        and catalog.find(named, Task.IMAGE_EMBEDDING) is not None
    )


async def embed_items(
    request: Request,
    service: EmbeddingService,
    items: list[Item],
    model: str | None,
    dimensions: int | None = None,
) -> EmbeddedItems:
    """One vector per item, in order. Texts alone on a text model: the text embedding path
    (cache, coalescing, token counts); anything else through an image_embedding model."""
    if not items:
        raise field_error("input", "send at least one text or image")
    pictures_in = [item for item in items if isinstance(item, ImageInput)]
    if not pictures_in and not is_image_model(service, model):
        texts = [item for item in items if isinstance(item, str)]
        done, _ = await timed_embed(service, texts, model, dimensions=dimensions)
        return EmbeddedItems(done.entry, done.vectors, int(done.tokens.sum()), [], [])
    registry = service.registry
    entry = images.vector_model(registry, model_name(model))
    images.check_count(len(pictures_in), request.app.state.settings.limits)
    texts = [item for item in items if isinstance(item, str)]
    if texts:  # before any image is fetched or decoded
        check_texts(texts, service.limits)
    blobs = list(await asyncio.gather(*(image_bytes(request, image) for image in pictures_in)))
    pictures = await _decoded(request, blobs, pictures_in, images.input_geometry(registry, entry))
    parts: dict[bool, np.ndarray] = {}
    if texts:
        parts[False] = await images.embed_texts(registry, entry, texts, service.limits)
    if pictures:
        parts[True] = await images.embed_pictures(registry, entry, pictures)
    dims = next(iter(parts.values())).shape[1]
    vectors = np.empty((len(items), dims), dtype=np.float32)
    is_image = np.array([isinstance(item, ImageInput) for item in items])
    for kind, rows in parts.items():
        vectors[is_image == kind] = rows
    formats = [image_format(blob) for blob in blobs]
    return EmbeddedItems(entry, shorten(vectors, dimensions, entry), 0, pictures, formats)


async def _decoded(
    request: Request, blobs: list[bytes], sent: list[ImageInput], geometry: Geometry | None
) -> list[Picture]:
    """The images decoded with /api/caption's limits (at the model's input size with its
    geometry); a bad one's 400 names its field."""
    if not blobs:
        return []
    try:
        return await images.decode_pictures(request.app, blobs, geometry=geometry)
    except InvalidRequest as error:
        index = (error.details or {}).get("image_index")
        if not isinstance(index, int) or not 0 <= index < len(sent):
            raise
        reason = error.message.removeprefix(f"image {index}: ")
        raise field_error(sent[index].field, reason) from None
