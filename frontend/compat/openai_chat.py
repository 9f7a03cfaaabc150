"""OpenAI-compatible POST /v1/chat/completions on the vision-language models: text and
image_url content parts (data URLs, or http(s) fetched under the crawl address policy), SSE
streaming with include_usage, and response_format json_object / json_schema."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from frontend.compat.chat_common import (
    ChatCallDep,
    chat_route,
    check_constrainable,
    check_max_tokens,
    checked_constraint,
    field_error,
    image_from_url,
    open_stream,
)
from frontend.compat.openai_errors import openai_error
from frontend.core.errors import APIError, envelope, json_response
from frontend.core.jsonbody import StrictJSONRoute
from frontend.vision.schemas import ChatMessage, ChatRequest, GenerationOptions, TextDelta

if TYPE_CHECKING:
    from frontend.vision.schemas import ChatResult

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StrictJSONRoute, prefix="/v1", tags=["openai"])
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: StrictStr = Field(description="A data: URL (base64), or an http(s) URL to fetch")
    detail: StrictStr | None = Field(default=None, description="Accepted; the model decides")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr = Field(description="text or image_url")
    text: StrictStr | None = None
    image_url: ImageURL | StrictStr | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: StrictStr = Field(description="system, developer, user or assistant")
    content: StrictStr | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr | None = None
    # `schema` shadows a BaseModel attribute: the field is schema_ under its JSON name
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(BaseModel):
    # Unknown fields are ignored, as OpenAI-compatible servers do: SDKs add new ones.
    model_config = ConfigDict(extra="ignore")

    model: StrictStr = Field(description="Caption model id (e.g. `llava`) or HF id")
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = Field(default=None, description="Wins over max_tokens")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: int = Field(default=1, ge=1, le=1, description="One choice per request")
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None


def _options(body: ChatCompletionRequest, request: Request) -> GenerationOptions:
    limits = request.app.state.settings.limits
    if body.max_completion_tokens is not None:
        tokens = check_max_tokens(body.max_completion_tokens, limits, "max_completion_tokens")
    else:
        tokens = check_max_tokens(body.max_tokens, limits, "max_tokens")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    kind = body.response_format.type if body.response_format else "text"
    schema = None
    if kind == "json_schema":
        given = body.response_format.json_schema if body.response_format else None
        if given is None or given.schema_ is None:
            raise field_error("response_format.json_schema.schema", "required for json_schema")
        schema = checked_constraint(given.schema_, False, "response_format.json_schema.schema")
    json_mode = kind == "json_object"
    if json_mode:
        checked_constraint(None, True, "response_format")
    return GenerationOptions(
        max_new_tokens=tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=tuple(stop),
        json_schema=schema,
        json_mode=json_mode,
    )


async def _message(request: Request, index: int, message: OpenAIMessage) -> ChatMessage:
    role = _ROLES.get(message.role)
    if role is None:
        raise field_error(f"messages.{index}.role", "must be system, developer, user or assistant")
    if message.content is None or isinstance(message.content, str):
        return ChatMessage(role, message.content or "")  # type: ignore[arg-type]
    texts: list[str] = []
    images: list[bytes] = []
    for j, part in enumerate(message.content):
        field = f"messages.{index}.content.{j}"
        if part.type == "text":
            texts.append(part.text or "")
            continue
        if part.type != "image_url":
            raise field_error(f"{field}.type", "must be text or image_url")
        if part.image_url is None:
            raise field_error(f"{field}.image_url", "required for an image_url part")
        url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
        images.append(await image_from_url(request, url, f"{field}.image_url.url"))
    return ChatMessage(role, "\n".join(texts), tuple(images))  # type: ignore[arg-type]


def _image_count(body: ChatCompletionRequest) -> int:
    return sum(
        1
        for m in body.messages
        if isinstance(m.content, list)
        for part in m.content
        if part.type != "text"
    )


def _usage(result: ChatResult) -> dict[str, int]:
    total = result.prompt_tokens + result.completion_tokens
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": total,
    }


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


@chat_route(
    router,
    "/chat/completions",
    "OpenAI-compatible chat completions with images (vision-language models)",
)
async def chat_completions(body: ChatCompletionRequest, call: ChatCallDep) -> Response:
    request, backend, registry = call.request, call.backend, call.registry
    call.check_images(_image_count(body))
    options = _options(body, request)
    check_constrainable(registry, body.model, options, "response_format")
    messages = [await _message(request, i, m) for i, m in enumerate(body.messages)]
    chat = ChatRequest(body.model, tuple(messages), options)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    head = {"id": ident, "created": created, "model": body.model}
    if not body.stream:
        result = await backend.chat(chat, None)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.done_reason,
            "logprobs": None,
        }
        return json_response(
            {**head, "object": "chat.completion", "choices": [choice], "usage": _usage(result)}
        )
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    items = await open_stream(backend.stream(chat, None))
    request_id = str(getattr(request.state, "request_id", ""))

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**head, "object": "chat.completion.chunk", "choices": [choice]})

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""}, None)
        try:
            async for item in items:
                if isinstance(item, TextDelta):
                    if item.text:
                        yield chunk({"content": item.text}, None)
                    continue
                yield chunk({}, item.done_reason)
                if include_usage:
                    usage = {"object": "chat.completion.chunk", "choices": [], **head}
                    yield _sse({**usage, "usage": _usage(item)})
        except APIError as error:  # after the 200: an error event in OpenAI's shape
            shaped = envelope(error.status, error.code, error.message, request_id, error.details)
            yield b"data: " + openai_error(error.status, bytes(shaped.body)) + b"\n\n"
        except Exception:
            logger.exception("chat completion stream failed")
            shaped = envelope(500, "INTERNAL_ERROR", "internal server error", request_id)
            yield b"data: " + openai_error(500, bytes(shaped.body)) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
