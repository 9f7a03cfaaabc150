"""Image embedding on Triton: decoded images and texts of one checkpoint into one vector space
(CLIP, SigLIP, Immich's exports), and faces (buffalo_l). Images are decoded in the document
sandbox with /api/caption's limits; one Triton request per image (the model batches them)."""

from __future__ import annotations

import asyncio
import binascii
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pybase64
from fastapi import FastAPI
from PIL import Image

from frontend.core.config import LimitsSection, ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.embed.service import check_texts
from frontend.images.clip_inputs import Geometry, decode_with, model_geometry
from frontend.images.decode import ImageLimits, decode_image
from frontend.images.pages import classify
from frontend.models.cache import snapshot_path
from frontend.models.registry import ModelRegistry
from frontend.sandbox.pool import sandbox_of
from frontend.sandbox.worker import session
from frontend.tasks.image_embedding_faces import is_face_model
from frontend.triton.codecs import fp32_matrix, image_input, strings, texts_input

TASK = Task.IMAGE_EMBEDDING
# What reaches Triton: CLIP looks at 224-384 px and SCRFD at 640; Immich sends 1440 px
# previews, which pass unchanged. Larger photos are shrunk first (not 36 MB of RGB per 12 MP).
MAX_SIDE = 2048
_DATA_URL = re.compile(r"^data:image/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class Picture:
    pixels: np.ndarray  # RGB uint8, at most MAX_SIDE per side
    height: int  # the decoded image's own size (EXIF orientation applied)
    width: int


def decode_sized(index: int, limits: ImageLimits, fit_within: int) -> tuple[np.ndarray, int, int]:
    """In the sandbox: the request's image `index`, shrunk to fit, and its full size."""
    full = decode_image(session()["files"][index], index, limits)
    height, width = full.shape[:2]
    if max(height, width) <= fit_within:
        return full, height, width
    image = Image.fromarray(full)
    image.thumbnail((fit_within, fit_within), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8), height, width


def check_count(count: int, limits: LimitsSection) -> None:
    if count > limits.max_images_per_request:
        raise InvalidRequest(
            f"too many images: {count} > {limits.max_images_per_request} per request"
        )


def input_geometry(registry: ModelRegistry, entry: ModelEntry) -> Geometry | None:
    """The geometry of a CLIP model's image input (frontend.images.clip_inputs), so images for
    it are sized where they are decoded: the same vectors, far fewer bytes to Triton."""
    snapshot = snapshot_path(registry.hub_dir, entry.hf_model)
    return model_geometry(snapshot) if snapshot is not None else None


def checked_pictures(
    blobs: list[bytes], types: list[str | None], limits: ImageLimits, geometry: Geometry | None
) -> list[tuple[np.ndarray, int, int]]:
    """In the sandbox, in one call: the request's files kept, refused if one is a document,
    then each decoded (at the model's input size where `geometry` gives one) with its size."""
    classify(blobs, types, len(blobs) == 1, False)
    return [
        decode_sized(index, limits, MAX_SIDE)
        if geometry is None
        else decode_with(index, limits, geometry)
        for index in range(len(blobs))
    ]


async def decode_pictures(
    app: FastAPI,
    blobs: list[bytes],
    types: list[str | None] | None = None,
    geometry: Geometry | None = None,
) -> list[Picture]:
    """Check and decode undecoded image files (400 naming the bad one) in a sandbox worker;
    with a model's `geometry`, at its input size."""
    limits: LimitsSection = app.state.settings.limits
    check_count(len(blobs), limits)
    image_limits = ImageLimits(limits.max_image_pixels, limits.max_image_side)
    async with sandbox_of(app).lease() as worker:  # images only: a document is a 400
        decoded = await worker.call(
            checked_pictures, blobs, types or [None] * len(blobs), image_limits, geometry
        )
    return [Picture(pixels, height, width) for pixels, height, width in decoded]


def base64_image(value: Any, index: int) -> bytes:
    """An image sent as base64 text or a data: URL (400 otherwise)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"image {index}: must be a base64 string or a data: URL")
    text = value.strip()
    prefix = _DATA_URL.match(text)
    try:
        return pybase64.b64decode(text[prefix.end() :] if prefix else text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"image {index}: is not valid base64", {"image_index": index}
        ) from None


def is_face_entry(registry: ModelRegistry, entry: ModelEntry) -> bool:
    """A face model (buffalo_l's layout: detection/ and recognition/), by its files on disk."""
    snapshot = snapshot_path(registry.hub_dir, entry.hf_model)
    return snapshot is not None and is_face_model(snapshot)


def image_models(registry: ModelRegistry) -> list[str]:
    """The enabled models that embed whole images (face models find faces instead)."""
    return [f.entry.id for f in registry.catalog.all(TASK) if not is_face_entry(registry, f.entry)]


def vector_model(registry: ModelRegistry, name: str | None) -> ModelEntry:
    """The image-embedding model a request names (the default without one); 400 for a text
    embedding model (no image tower) and for a face model, which embeds the faces it finds
    rather than whole images or texts."""
    catalog = registry.catalog
    if name is not None and catalog.find(name, TASK) is None:
        text_model = catalog.find(name, Task.TEXT_EMBEDDING)
        if text_model is not None:
            able = image_models(registry)
            raise InvalidRequest(
                f"model '{text_model.entry.id}' is a text embedding model and cannot embed "
                "images; models that can: "
                + (", ".join(able) or "none is enabled (add an image_embedding model)"),
                {
                    "errors": [{"field": "model", "message": "has no image encoder"}],
                    "available_models": able,
                },
            )
    entry = catalog.lookup(name, TASK)
    if is_face_entry(registry, entry):
        raise InvalidRequest(
            f"model '{entry.id}' is a face model: it finds faces, it does not embed whole "
            "images or texts (Immich's facial-recognition on POST /predict uses it)"
        )
    return entry


async def embed_pictures(
    registry: ModelRegistry,
    entry: ModelEntry,
    pictures: list[Picture],
    keep_alive: float | None = None,
) -> np.ndarray:
    """float32 [images, dimensions]: the image tower's vectors."""

    async def one(picture: Picture) -> np.ndarray:
        result = await registry.infer(
            entry, [image_input(picture.pixels)], ["EMBEDDING"], None, keep_alive
        )
        return fp32_matrix(result, "EMBEDDING", 1)[0]

    rows = await asyncio.gather(*(one(picture) for picture in pictures))
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


async def embed_texts(
    registry: ModelRegistry,
    entry: ModelEntry,
    texts: list[str],
    limits: LimitsSection,
    keep_alive: float | None = None,
) -> np.ndarray:
    """float32 [texts, dimensions]: the text tower's vectors, in the images' space."""
    check_texts(texts, limits)
    size = entry.max_batch_size
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]

    async def one(chunk: list[str]) -> np.ndarray:
        result = await registry.infer(entry, [texts_input(chunk)], ["EMBEDDING"], None, keep_alive)
        return fp32_matrix(result, "EMBEDDING", len(chunk))

    return np.concatenate(await asyncio.gather(*(one(chunk) for chunk in chunks)))


async def find_faces(
    registry: ModelRegistry, entry: ModelEntry, picture: Picture, min_score: float
) -> list[dict[str, Any]]:
    """The faces of one image: box [x1, y1, x2, y2] in the image's own pixels, score and a unit
    embedding (a face model: buffalo_l's layout)."""
    parameters: dict[str, int | str] = {"min_score": repr(float(min_score))}
    result = await registry.infer(entry, [image_input(picture.pixels)], ["FACES"], parameters)
    faces: list[dict[str, Any]] = orjson.loads(strings(result, "FACES")[0])
    scale = picture.width / picture.pixels.shape[1]  # the image was shrunk to MAX_SIDE
    if scale != 1.0:
        for face in faces:
            face["box"] = [round(value * scale) for value in face["box"]]
    return faces
