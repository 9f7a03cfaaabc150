"""Immich's machine-learning API (GET /ping, POST /predict), so an Immich server can use this
service as its `machine-learning.urls`: smart search (clip), faces (facial-recognition) and
OCR, in the request and answer shapes of immich-app/immich's machine-learning/immich_ml/main.py.

Immich sends multipart `entries` (JSON text) and an `image` file part or a `text` field; its
errors are FastAPI's {"detail": "..."} with 422 for bad entries and 400 without an input.
Immich names models by its own names (ViT-B-32__openai, buffalo_l, PP-OCRv5_mobile): they
resolve to the configured model whose HF id is immich-app/<name> (or ends in /<name>), a
known equivalent, or a configured id; anything else is a 422 naming what is available."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from frontend.core.config import ModelEntry, Task
from frontend.core.errors import APIError
from frontend.embed import images
from frontend.embed.images import Picture
from frontend.images.clip_inputs import Geometry, model_geometry
from frontend.models.cache import snapshot_path
from frontend.models.registry import ModelRegistry
from frontend.triton.codecs import image_input, strings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["immich"])
# Immich's model names -> the transformers checkpoints of the same weights (used when the
# immich-app/ export itself is not configured; same space, preprocessing may differ slightly)
EQUIVALENTS = {
    "ViT-B-32__openai": "openai/clip-vit-base-patch32",
    "ViT-B-16__openai": "openai/clip-vit-base-patch16",
    "ViT-L-14__openai": "openai/clip-vit-large-patch14",
    "ViT-B-16-SigLIP__webli": "google/siglip-base-patch16-224",
}
OCR_NAMES = ("PP-OCRv5_mobile", "PP-OCRv5_server")  # answered by the default OCR model
DEFAULT_FACE_SCORE = 0.7
DEFAULT_TEXT_SCORE = 0.9  # Immich's TextRecognizer default when the server sends none
ENTRY_TYPES = {
    "clip": {"visual", "textual"},
    "facial-recognition": {"detection", "recognition"},
    "ocr": {"detection", "recognition"},
}


class ImmichError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _answer(body: Any, status: int = 200) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status, media_type="application/json")


@router.get("/ping", response_class=PlainTextResponse, summary="Immich's health check: pong")
async def ping() -> PlainTextResponse:
    return PlainTextResponse("pong")


def parse_entries(text: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """{task: {type: {"modelName": str, "options": {...}}}}, else 422 (Immich's words)."""
    try:
        entries = orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        entries = None
    if not isinstance(entries, dict) or not entries:
        raise ImmichError(422, "Invalid request format.")
    for task, types in entries.items():
        if task not in ENTRY_TYPES:
            raise ImmichError(
                422, f"Unknown task '{str(task)[:50]}'; expected one of {', '.join(ENTRY_TYPES)}"
            )
        if not isinstance(types, dict) or not types or not set(types) <= ENTRY_TYPES[task]:
            raise ImmichError(422, "Invalid request format.")
        for entry in types.values():
            if not isinstance(entry, dict) or not isinstance(entry.get("modelName"), str):
                raise ImmichError(422, "Invalid request format.")
            if not isinstance(entry.get("options", {}), dict):
                raise ImmichError(422, "Invalid request format.")
    return entries


def field_bytes(value: str) -> bytes:
    """A file sent without a filename arrives as a text field (Starlette decodes it as UTF-8,
    else Latin-1): the original bytes. Images are never valid UTF-8 (JPEG starts 0xFF)."""
    try:
        data = value.encode("latin-1")
        data.decode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8")
    except UnicodeDecodeError:
        return data
    return value.encode("utf-8")


def resolve(registry: ModelRegistry, name: str, task: Task) -> ModelEntry:
    """An Immich model name (or a configured id / HF id) -> an enabled model of `task`."""
    catalog = registry.catalog
    found = catalog.find(name, task)
    if found is None:
        candidates = [f"immich-app/{name}", EQUIVALENTS.get(name)]
        found = next((f for ref in candidates if ref and (f := catalog.find(ref, task))), None)
    if found is None:
        found = next((f for f in catalog.all(task) if f.entry.hf_model.endswith(f"/{name}")), None)
    if found is None and task is Task.OCR and name in OCR_NAMES:
        found = catalog.default(task)
    if found is None:
        available = ", ".join(f.entry.id for f in catalog.all(task)) or "none"
        raise ImmichError(
            422, f"Model '{name[:100]}' is not available for {task.short}; available: {available}"
        )
    return found.entry


def _number(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ImmichError(422, f"option {key} must be a number from 0 to 1")
    return float(value)


async def _read_form(request: Request) -> tuple[Any, bytes | None, str | None]:
    limit = request.app.state.settings.limits.max_body_bytes
    try:
        form = await request.form(max_files=2, max_fields=8, max_part_size=limit)
    except MultiPartException as exc:
        raise ImmichError(422, f"Invalid multipart body: {exc.message[:200]}") from None
    try:
        entries, image, text = form.get("entries"), form.get("image"), form.get("text")
        data: bytes | None = None
        if isinstance(image, UploadFile):
            data = await image.read()
        elif isinstance(image, str):
            data = field_bytes(image)
        return entries, data, text if isinstance(text, str) else None
    finally:
        await form.close()


@router.post(
    "/predict",
    summary="Immich's inference call: clip, facial-recognition, ocr",
    responses={422: {"description": "Immich's answer to bad or unknown entries: {detail}"}},
)
async def predict(request: Request) -> Response:
    try:
        entries_text, image, text = await _read_form(request)
        entries = parse_entries(entries_text)
        registry: ModelRegistry = request.app.state.registry
        if image is None and text is None:
            raise ImmichError(400, "Either image or text must be provided")
        picture = await _picture(request, registry, entries, image) if image else None
        response: dict[str, Any] = {}
        for task, types in entries.items():
            response[task] = await _run(registry, request, task, types, picture, text)
        if picture is not None:
            response["imageHeight"], response["imageWidth"] = picture.height, picture.width
    except ImmichError as exc:
        return _answer({"detail": exc.detail}, exc.status)
    except APIError as exc:  # a bad image, a model that failed: its status, Immich's shape
        return _answer({"detail": exc.message}, exc.status)
    return _answer(response)


async def _picture(
    request: Request, registry: ModelRegistry, entries: dict[str, Any], image: bytes
) -> Picture:
    """The decoded image; for a CLIP image vector alone (Immich's smart search), already at
    the model's input size (frontend.images.clip_inputs: the same vector, far fewer bytes)."""
    geometry = _clip_geometry(registry, entries)
    return (await images.decode_pictures(request.app, [image], geometry=geometry))[0]


def _clip_geometry(registry: ModelRegistry, entries: dict[str, Any]) -> Geometry | None:
    """Faces and OCR need the whole image: only a request for clip visual alone is sized."""
    clip = entries.get("clip", {})
    visual = clip.get("visual")
    if len(entries) != 1 or len(clip) != 1 or visual is None:
        return None
    try:
        model = resolve(registry, visual["modelName"], Task.IMAGE_EMBEDDING)
    except ImmichError:
        return None  # answered by _run, after the image is checked
    snapshot = snapshot_path(registry.hub_dir, model.hf_model)
    return model_geometry(snapshot) if snapshot is not None else None


async def _run(
    registry: ModelRegistry,
    request: Request,
    task: str,
    types: dict[str, dict[str, Any]],
    picture: Picture | None,
    text: str | None,
) -> Any:
    if task == "clip":
        if len(types) != 1:
            raise ImmichError(422, "clip takes one of visual or textual")
        kind, entry = next(iter(types.items()))
        model = resolve(registry, entry["modelName"], Task.IMAGE_EMBEDDING)
        if images.is_face_entry(registry, model):
            raise ImmichError(422, f"Model '{entry['modelName'][:100]}' is a face model")
        if kind == "visual":
            vectors = await images.embed_pictures(registry, model, [_needs(picture)])
        else:
            if text is None:
                raise ImmichError(400, "clip textual needs text")
            limits = request.app.state.settings.limits
            vectors = await images.embed_texts(registry, model, [text], limits)
        return orjson.dumps(vectors[0], option=orjson.OPT_SERIALIZE_NUMPY).decode()
    if task == "facial-recognition":
        return await _faces(registry, types, _needs(picture))
    return await _ocr(registry, types, _needs(picture))


def _needs(picture: Picture | None) -> Picture:
    if picture is None:
        raise ImmichError(400, "this task needs an image")
    return picture


async def _faces(
    registry: ModelRegistry, types: dict[str, dict[str, Any]], picture: Picture
) -> list[dict[str, Any]]:
    detection = types.get("detection") or types.get("recognition") or {}
    model = resolve(registry, detection["modelName"], Task.IMAGE_EMBEDDING)
    if not images.is_face_entry(registry, model):
        raise ImmichError(422, f"Model '{model.id}' is not a face model (buffalo_l's layout)")
    min_score = _number(detection.get("options", {}), "minScore", DEFAULT_FACE_SCORE)
    faces = await images.find_faces(registry, model, picture, min_score)
    return [
        {
            "boundingBox": dict(zip(("x1", "y1", "x2", "y2"), face["box"], strict=True)),
            "embedding": orjson.dumps(face["embedding"]).decode(),
            "score": face["score"],
        }
        for face in faces
    ]


async def _ocr(
    registry: ModelRegistry, types: dict[str, dict[str, Any]], picture: Picture
) -> dict[str, list[Any]]:
    """Our OCR engine's lines in Immich's columns: boxes as 8 numbers (4 corners) relative to
    the image size, textScore above recognition.minScore; boxScore is the line's confidence
    too (the engines report one score per line)."""
    named = types.get("detection") or types.get("recognition") or {}
    model = resolve(registry, named["modelName"], Task.OCR)
    min_score = _number(
        types.get("recognition", {}).get("options", {}), "minScore", DEFAULT_TEXT_SCORE
    )
    result = await registry.infer(model, [image_input(picture.pixels)], ["RESULT"])
    lines = orjson.loads(strings(result, "RESULT")[0]).get("lines", [])
    height, width = picture.pixels.shape[:2]
    answer: dict[str, list[Any]] = {"text": [], "box": [], "boxScore": [], "textScore": []}
    for line in lines:
        if line["confidence"] <= min_score:
            continue
        answer["text"].append(line["text"])
        answer["box"].extend(v for x, y in line["box"] for v in (x / width, y / height))
        answer["boxScore"].append(line["confidence"])
        answer["textScore"].append(line["confidence"])
    return answer
