"""POST /api/caption and POST /api/ocr: one shape, parse the images, run the task, reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from frontend.core.config import ModelEntry, Task
from frontend.core.deps import RegistryDep
from frontend.core.errors import InvalidRequest, json_response, request_id_of
from frontend.core.jsonbody import StrictJSONRoute
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.images.cached import cached_outputs
from frontend.images.inputs import RawImages, decode_images, read_raw
from frontend.images.languages import choose_ocr_model
from frontend.images.ocr_document import read_document
from frontend.images.openapi import image_request_body
from frontend.images.pages import classify
from frontend.images.schemas import (
    CaptionOptions,
    CaptionResponse,
    ImageOptions,
    OcrDocumentResponse,
    OcrOptions,
    OcrResponse,
)
from frontend.models.catalog import ModelCatalog
from frontend.models.lifecycle import parse_keep_alive
from frontend.models.registry import ModelRegistry
from frontend.sandbox.pool import sandbox_of
from frontend.tasks.caption import PLAIN_PROMPTS
from frontend.triton.codecs import image_input, strings
from frontend.vision import service as vision
from frontend.vision.schemas import ChatResult, GenerationOptions

router = APIRouter(route_class=StrictJSONRoute, prefix="/api")
# Captioning models look at a few hundred pixels (BLIP: 384); shipping a 12 MP photo's raw
# RGB to them would cost 36 MB per image for nothing. OCR keeps full resolution.
CAPTION_MAX_SIDE = 1024
_MODEL_FIELD = {"type": "string", "description": "config id or HF id; the default if omitted"}
Choice = tuple[ModelEntry, dict[str, int | str]]  # the model and its Triton request parameters


def _named_model(catalog: ModelCatalog, options: Any, task: Task) -> Choice:
    return catalog.lookup(options.model, task), options.parameters()


def _ocr_model(catalog: ModelCatalog, options: Any, _task: Task) -> Choice:
    return choose_ocr_model(catalog, options.model, options.lang)


@dataclass(frozen=True)
class ImageTask:
    """What differs between the image endpoints."""

    task: Task
    options: type[ImageOptions]
    output: str  # the Triton output: one string per image
    reply: Callable[[list[str], bool], dict[str, Any]]  # (outputs, single image) -> fields
    fit_within: int | None = None
    choose: Callable[[ModelCatalog, Any, Task], Choice] = _named_model
    documents: bool = False  # reads PDFs and multi-page TIFFs (one per request)


def _captions(outputs: list[str], single: bool) -> dict[str, Any]:
    return {"caption": outputs[0]} if single else {"captions": outputs}


def _answer_json(result: ChatResult) -> str:
    """What the result cache keeps of an answer: its text, why it ended and its token counts."""
    fields = ("text", "done_reason", "prompt_tokens", "completion_tokens")
    return orjson.dumps({name: getattr(result, name) for name in fields}).decode("utf-8")


def _answer_of(cached: str) -> dict[str, Any]:
    """An answer back from `_answer_json`; a plain caption a cache kept from before counts 0."""
    try:
        answer = orjson.loads(cached)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        return {"text": cached, "done_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0}
    return answer


def _pages(outputs: list[str], single: bool) -> dict[str, Any]:
    pages = [orjson.loads(document) for document in outputs]
    return pages[0] if single else {"results": pages}


CAPTION = ImageTask(Task.IMAGE_CAPTION, CaptionOptions, "CAPTION", _captions, CAPTION_MAX_SIDE)
OCR = ImageTask(Task.OCR, OcrOptions, "RESULT", _pages, choose=_ocr_model, documents=True)


async def serve_images(request: Request, registry: ModelRegistry, spec: ImageTask) -> Response:
    """Parse the request's images and answer with `run_images`' body."""
    started = time.perf_counter()
    raw = await read_raw(request, spec.options, request.app.state.settings.limits)
    return json_response(await run_images(request, registry, spec, raw, started))


async def run_images(
    request: Request, registry: ModelRegistry, spec: ImageTask, raw: RawImages, started: float
) -> dict[str, Any]:
    """Decode the images (or open the document), run them through the model (one Triton
    request each, batched by Triton): the reply with request_id, model_used and
    processing_time_ms."""
    limits = request.app.state.settings.limits
    # The files are parsed in the document sandbox; a document keeps its worker while its
    # pages are read, images only while they are decoded (not during inference).
    async with sandbox_of(request.app).lease() as worker:
        kind = await worker.call(classify, raw.data, raw.types, raw.single, spec.documents)
        if kind is not None:
            return await read_document(request, registry, raw, kind, started, worker)
        parsed = await decode_images(raw, limits, worker, fit_within=spec.fit_within)
    options: ImageOptions = parsed.options
    entry, chosen = spec.choose(registry.catalog, options, spec.task)
    keep_alive = parse_keep_alive(options.keep_alive)
    parameters = chosen or None

    async def one(image: Any) -> str:
        inputs = [image_input(image)]
        result = await registry.infer(entry, inputs, [spec.output], parameters, keep_alive)
        return strings(result, spec.output)[0]

    outputs = await cached_outputs(request, spec.task, entry, parameters, parsed.images, one)
    body: dict[str, Any] = {"request_id": request_id_of(request)}
    body.update(spec.reply(outputs, parsed.single))
    body["model_used"] = entry.id
    body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return body


async def _caption(request: Request, registry: ModelRegistry) -> Response:
    """Each image captioned (or, with `together`, one answer about all), prompt and options
    applied, through the vision-language service; one Triton request per answer."""
    started = time.perf_counter()
    limits = request.app.state.settings.limits
    raw = await read_raw(request, CaptionOptions, limits)
    options: CaptionOptions = raw.options
    entry = registry.catalog.lookup(options.model, Task.IMAGE_CAPTION)
    keep_alive = parse_keep_alive(options.keep_alive)
    count = 1 if options.together else len(raw.data)
    several = options.together and len(raw.data) > 1
    if several and vision.model_family(registry, entry) in PLAIN_PROMPTS:
        raise InvalidRequest(f"model '{entry.id}' answers about one image at a time")
    generation = GenerationOptions(
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        seed=options.seed,
        stop=options.stops(),
    )
    settings = vision.check_options(generation, limits)
    if options.num_beams is not None:
        settings["num_beams"] = options.num_beams
    async with sandbox_of(request.app).lease() as worker:  # images only: no documents
        await worker.call(classify, raw.data, raw.types, raw.single, False)
        parsed = await decode_images(raw, limits, worker, fit_within=CAPTION_MAX_SIDE)

    def turns(images: int) -> list[dict[str, Any]]:
        said = [("system", options.system, 0), ("user", options.prompt or "", images)]
        return [{"role": r, "text": t, "images": n} for r, t, n in said if t is not None]

    async def one(*images: Any) -> str:
        prepared = vision.prepared(entry, list(images), turns(len(images)), settings, False)
        return _answer_json(await vision.run(registry, prepared, None, keep_alive))

    if count == 1 and len(parsed.images) > 1:
        outputs = [await one(*parsed.images)]
    elif options.temperature and options.seed is None:  # sampled: never from the cache
        outputs = list(await asyncio.gather(*(one(image) for image in parsed.images)))
    else:
        key = options.parameters()
        outputs = await cached_outputs(request, Task.IMAGE_CAPTION, entry, key, parsed.images, one)
    answers = [_answer_of(output) for output in outputs]
    single = parsed.single or count == 1
    body: dict[str, Any] = {"request_id": request_id_of(request)}
    body.update(_captions([str(a["text"]) for a in answers], single))
    reasons = [str(a["done_reason"]) for a in answers]
    body.update({"done_reason": reasons[0]} if single else {"done_reasons": reasons})
    prompt = sum(int(a["prompt_tokens"]) for a in answers)
    completion = sum(int(a["completion_tokens"]) for a in answers)
    body["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    body["model_used"] = entry.id
    body["processing_time_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return json_response(body)


_GENERATION_FIELDS: dict[str, Any] = {
    "model": _MODEL_FIELD,
    "prompt": {
        "type": "string",
        "maxLength": 20000,
        "description": "the question or instruction; chat models get it as the user turn, "
        "BLIP as a prefix to continue, Florence-2 as a task token (`<MORE_DETAILED_CAPTION>`, "
        "`<OCR>`), PaliGemma as its prefix (`caption en`). Default: a plain caption",
    },
    "system": {"type": "string", "maxLength": 20000, "description": "chat models' system turn"},
    "together": {
        "type": "boolean",
        "description": "one answer about all images of `batch` (models that take several)",
    },
    "max_new_tokens": {"type": "integer", "minimum": 1},
    "num_beams": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "description": "0 or absent: greedy"},
    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1},
    "seed": {"type": "integer", "minimum": 0},
    "stop": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "the answer ends before the first of these strings",
    },
}


@router.post(
    "/caption",
    response_model=CaptionResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Describe images in words",
    tags=["captioning"],
    openapi_extra=image_request_body(_GENERATION_FIELDS),
)
async def caption(request: Request, registry: RegistryDep) -> Response:
    return await _caption(request, registry)


@router.post(
    "/ocr",
    response_model=OcrResponse | OcrDocumentResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    summary="Read the text in images, PDFs and multi-page TIFFs",
    description="One image (`image`) answers with `text` and `lines`, a `batch` with "
    "`results`; a document (a PDF, or a TIFF with several pages, sent alone as `image`) "
    "answers with `pages` and the whole `text`. PDF pages with a text layer are answered from "
    "it without OCR unless `force_ocr`.",
    tags=["ocr"],
    openapi_extra=image_request_body(
        {
            "model": {"type": "string", "description": "config id; the default if omitted"},
            "lang": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "language(s) of the text: Tesseract codes joined by '+' "
                "(deu, deu+eng) or ISO 639-1 (de); without `model`, the default OCR model "
                "if it reads them, else the first that does (GET /api/models lists each "
                "OCR model's languages)",
                "examples": ["eng", "deu+eng"],
            },
            "dpi": {
                "type": "integer",
                "minimum": 36,
                "maximum": 1200,
                "description": "documents: PDF render resolution (default ocr.pdf_dpi, at most "
                "ocr.max_pdf_dpi); pages are scaled down to fit the image pixel limits",
            },
            "pages": {
                "type": "string",
                "maxLength": 200,
                "description": "documents: 1-based pages to read, e.g. `1-3,5,8-` (default all)",
            },
            "force_ocr": {
                "type": "boolean",
                "description": "documents: OCR PDF pages even when they have a text layer",
            },
            "page_images": {
                "type": "boolean",
                "description": "documents: return each page as rendered (PNG data URL)",
            },
        },
        documents=True,
    ),
)
async def ocr(request: Request, registry: RegistryDep) -> Response:
    return await serve_images(request, registry, OCR)
