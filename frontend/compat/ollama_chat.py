"""Ollama's POST /api/generate and POST /api/chat on the vision-language models: base64 images,
NDJSON streaming by default, `format` ("json" or a JSON schema), `options`, `keep_alive`, and
the final chunk's counts and durations (ns). Errors: compat.ollama_models' {"error": "..."}."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from frontend.compat.chat_common import (
    CHAT_TASK,
    ChatBackendDep,
    ChatCall,
    ChatCallDep,
    chat_route,
    check_constrainable,
    check_max_tokens,
    checked_constraint,
    decode_base64_image,
    field_error,
    open_stream,
)
from frontend.core.deps import RegistryDep
from frontend.core.errors import APIError, ModelNotFound, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.embed.schemas import KEEP_ALIVE_DOC
from frontend.models.lifecycle import parse_keep_alive
from frontend.vision.schemas import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    GenerationOptions,
    TextDelta,
)

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StrictJSONRoute, prefix="/api", tags=["ollama"])
NDJSON = "application/x-ndjson"
ROLES = ("system", "user", "assistant")
FORMAT_DOC = '"json" for any JSON object, or a JSON schema; "" or null: free text'


class OllamaOptions(BaseModel):
    # Ollama's runner options (num_ctx, repeat_penalty, mirostat, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(default=None, ge=0, description="0: greedy")
    num_predict: int | None = Field(default=None, description="-1 or -2: the model's default")
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[StrictStr] | StrictStr | None = None


class OllamaCommon(BaseModel):
    model_config = ConfigDict(extra="ignore")  # as Ollama: clients send fields we do not use

    model: StrictStr = Field(description="Caption model id (`llava` or `llava:latest`) or HF id")
    format: Literal["json", ""] | dict[str, Any] | None = Field(
        default=None, description=FORMAT_DOC
    )
    options: OllamaOptions | None = None
    stream: bool = Field(default=True, description="NDJSON chunks (the default), or one answer")
    keep_alive: float | StrictStr | None = Field(default=None, description=KEEP_ALIVE_DOC)


class OllamaGenerateRequest(OllamaCommon):
    prompt: StrictStr | None = None
    images: list[StrictStr] | None = Field(default=None, description="base64 image files")
    system: StrictStr | None = None


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: StrictStr = Field(description="system, user or assistant")
    content: StrictStr = ""
    images: list[StrictStr] | None = Field(default=None, description="base64 image files")


class OllamaChatRequest(OllamaCommon):
    messages: list[OllamaMessage] | None = None


def _options(body: OllamaCommon, request: Request) -> GenerationOptions:
    limits = request.app.state.settings.limits
    given = body.options or OllamaOptions()
    predict = given.num_predict
    if predict is not None and predict in (-1, -2):
        predict = None  # Ollama's "until the end" and "fill the context": the model's default
    stop = [given.stop] if isinstance(given.stop, str) else given.stop or []
    constraint = body.format if isinstance(body.format, dict) else None
    json_mode = body.format == "json"
    return GenerationOptions(
        max_new_tokens=check_max_tokens(predict, limits, "options.num_predict"),
        temperature=given.temperature,
        top_p=given.top_p,
        top_k=given.top_k,
        seed=given.seed,
        stop=tuple(stop),
        json_schema=checked_constraint(constraint, json_mode, "format"),
        json_mode=json_mode,
    )


def _images(values: list[str] | None, field: str) -> tuple[bytes, ...]:
    return tuple(decode_base64_image(v, f"{field}.{i}") for i, v in enumerate(values or ()))


def _name(model: str) -> str:
    return model.removesuffix(":latest")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _final(result: ChatResult) -> dict[str, Any]:
    """Ollama's closing fields: counts, and durations in nanoseconds."""
    evaluating = max(result.total_ms - result.load_ms - result.prompt_ms, 0.0)
    return {
        "done": True,
        "done_reason": result.done_reason,
        "total_duration": int(result.total_ms * 1e6),
        "load_duration": int(result.load_ms * 1e6),
        "prompt_eval_count": result.prompt_tokens,
        "prompt_eval_duration": int(result.prompt_ms * 1e6),
        "eval_count": result.completion_tokens,
        "eval_duration": int(evaluating * 1e6),
    }


async def _answer(
    backend: ChatBackendDep,
    chat: ChatRequest,
    keep_alive: float | None,
    stream: bool,
    shape: Any,  # (model, text) -> the chunk's text part: {"response": ...} or {"message": ...}
    model: str,
) -> Response:
    if not stream:
        result = await backend.chat(chat, keep_alive)
        return json_response(
            {"model": model, "created_at": _now(), **shape(result.text), **_final(result)}
        )
    items = await open_stream(backend.stream(chat, keep_alive))

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for item in items:
                if isinstance(item, TextDelta):
                    chunk = {
                        "model": model,
                        "created_at": _now(),
                        **shape(item.text),
                        "done": False,
                    }
                else:
                    chunk = {"model": model, "created_at": _now(), **shape(""), **_final(item)}
                yield orjson.dumps(chunk) + b"\n"
        except APIError as error:  # after the 200: Ollama reports it as a line of its own
            yield orjson.dumps({"error": error.message}) + b"\n"
        except Exception:
            logger.exception("Ollama chat stream failed")
            yield orjson.dumps({"error": "internal server error"}) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


async def _load_or_unload(
    registry: RegistryDep, name: str, keep_alive: float | None, shape: Any
) -> Response:
    """An empty prompt loads the model (keep_alive 0: unloads it), as Ollama's docs show."""
    found = registry.catalog.find(name, CHAT_TASK)
    if found is None:
        raise ModelNotFound(f"model '{name[:100]}' not found", {"model_id": name[:100]})
    if keep_alive == 0:
        if registry.is_loaded(found.entry.id):
            await registry.unload(found.entry)
        reason = "unload"
    else:
        await registry.ensure_loaded(found.entry)
        reason = "load"
    body = {"model": name, "created_at": _now(), **shape(""), "done": True, "done_reason": reason}
    return json_response(body)


def _response(text: str) -> dict[str, Any]:
    return {"response": text}


def _message(text: str) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text}}


async def _serve(
    call: ChatCall,
    body: OllamaCommon,
    images: int,
    messages: Callable[[], list[ChatMessage]] | None,
    shape: Callable[[str], dict[str, Any]],
) -> Response:
    """/api/generate's and /api/chat's common path: keep_alive and the image count checked, no
    input (`messages` None) loads or unloads the model, else the model answers."""
    keep_alive = parse_keep_alive(body.keep_alive)
    call.check_images(images)
    if messages is None:
        return await _load_or_unload(call.registry, body.model, keep_alive, shape)
    chat = ChatRequest(_name(body.model), tuple(messages()), _options(body, call.request))
    check_constrainable(call.registry, chat.model, chat.options, "format")
    return await _answer(call.backend, chat, keep_alive, body.stream, shape, body.model)


@chat_route(
    router,
    "/generate",
    "Ollama's completion: a prompt and images to a vision-language model (NDJSON stream)",
)
async def generate(body: OllamaGenerateRequest, call: ChatCallDep) -> Response:
    def messages() -> list[ChatMessage]:
        system = [ChatMessage("system", body.system)] if body.system else []
        return [*system, ChatMessage("user", body.prompt or "", _images(body.images, "images"))]

    empty = not body.prompt and not body.images
    return await _serve(call, body, len(body.images or ()), None if empty else messages, _response)


@chat_route(
    router,
    "/chat",
    "Ollama's chat: messages with images to a vision-language model (NDJSON stream)",
)
async def chat(body: OllamaChatRequest, call: ChatCallDep) -> Response:
    given = body.messages or []

    def messages() -> list[ChatMessage]:
        found = []
        for i, message in enumerate(given):
            if message.role not in ROLES:
                raise field_error(f"messages.{i}.role", "must be system, user or assistant")
            images = _images(message.images, f"messages.{i}.images")
            found.append(ChatMessage(message.role, message.content, images))  # type: ignore[arg-type]
        return found

    count = sum(len(m.images or ()) for m in given)
    return await _serve(call, body, count, messages if given else None, _message)
