"""What the Ollama and OpenAI chat dialects share: the chat backend (frontend.vision.service),
base64 and fetched images, the JSON constraint check, the routes' decorator, and the stream
whose first item is read before the 200."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Protocol

import pybase64
from fastapi import APIRouter, Depends, Request
from fastapi.types import DecoratedCallable

from frontend.core.config import LimitsSection, Task
from frontend.core.errors import InvalidRequest
from frontend.core.openapi import INFERENCE_ERRORS, error_responses
from frontend.crawl.fetch import Fetcher, RefusedFetch
from frontend.models.cache import snapshot_path
from frontend.models.registry import ModelRegistry
from frontend.vision.schema_check import SchemaError, check_schema
from frontend.vision.schemas import ChatRequest, ChatResult, GenerationOptions, TextDelta

CHAT_TASK = Task.IMAGE_CAPTION
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+/-]*)(?P<params>(;[^,;]*)*?);base64,", re.I)
_IMAGE_FETCH_TIMEOUT = 15.0


def field_error(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid request: {field}: {message}", {"errors": [{"field": field, "message": message}]}
    )


class ChatBackend(Protocol):
    """The vision-language service as the chat routes use it (tests put a fake in)."""

    async def chat(self, request: ChatRequest, keep_alive: float | None) -> ChatResult: ...

    def stream(
        self, request: ChatRequest, keep_alive: float | None
    ) -> AsyncIterator[TextDelta | ChatResult]: ...


class VisionBackend:
    """frontend.vision.service on the app's registry and limits."""

    def __init__(self, registry: ModelRegistry, limits: LimitsSection) -> None:
        self.registry = registry
        self.limits = limits

    async def chat(self, request: ChatRequest, keep_alive: float | None) -> ChatResult:
        from frontend.vision import service

        return await service.chat(self.registry, request, limits=self.limits, keep_alive=keep_alive)

    def stream(
        self, request: ChatRequest, keep_alive: float | None
    ) -> AsyncIterator[TextDelta | ChatResult]:
        from frontend.vision import service

        return service.stream(self.registry, request, limits=self.limits, keep_alive=keep_alive)


async def get_chat_backend(request: Request) -> ChatBackend:
    state = request.app.state
    return VisionBackend(state.registry, state.settings.limits)


ChatBackendDep = Annotated[ChatBackend, Depends(get_chat_backend)]


@dataclass(frozen=True)
class ChatCall:
    """What a chat route (Ollama's, OpenAI's) works with: the request, the chat backend, the
    model registry."""

    request: Request
    backend: ChatBackend
    registry: ModelRegistry

    @property
    def limits(self) -> LimitsSection:
        return self.request.app.state.settings.limits

    def check_images(self, count: int) -> None:
        check_image_count(count, self.limits)


async def get_chat_call(request: Request, backend: ChatBackendDep) -> ChatCall:
    return ChatCall(request, backend, request.app.state.registry)


ChatCallDep = Annotated[ChatCall, Depends(get_chat_call)]


def chat_route(
    router: APIRouter, path: str, summary: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of a chat route (Ollama's, OpenAI's): POST, the inference errors documented."""
    return router.post(path, responses=error_responses(*INFERENCE_ERRORS), summary=summary)


def check_image_count(count: int, limits: LimitsSection) -> None:
    """Before decoding anything: a thousand images are refused for the count alone."""
    if count > limits.max_images_per_request:
        raise InvalidRequest(
            f"too many images: {count} > {limits.max_images_per_request} per request",
            {"errors": [{"field": "images", "message": "too many images"}]},
        )


def decode_base64_image(value: str, field: str) -> bytes:
    """An image sent as base64 (a data URL's prefix is tolerated); 400 naming the field."""
    text = _DATA_URL.sub("", value.strip(), count=1)
    try:
        # Line breaks allowed (str.split: 15x re.sub on a photo); pybase64: 70x the stdlib
        data = pybase64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise field_error(field, "not valid base64") from None
    if not data:
        raise field_error(field, "the image is empty")
    return data


def is_data_url(value: str) -> bool:
    return _DATA_URL.match(value) is not None


async def image_from_url(request: Request, url: str, field: str) -> bytes:
    """An image URL's image: a data: URL decoded, an http(s) URL fetched (fetch_image)."""
    if is_data_url(url):
        return decode_base64_image(url, field)
    if url.lower().startswith(("http://", "https://")):
        max_bytes = request.app.state.settings.limits.max_body_bytes
        return await fetch_image(request, url, field, max_bytes)
    raise field_error(field, "must be a data: URL or an http(s) URL")


async def fetch_image(request: Request, url: str, field: str, max_bytes: int) -> bytes:
    """An http(s) image URL fetched through the crawler's filtering proxy, so the address
    policy (crawl.allow_private_networks, crawl.allowed_hosts) holds for every hop."""
    state = request.app.state
    settings = state.settings.crawl
    crawl = state.crawl
    try:
        async with Fetcher(
            crawl.policy,
            crawl.resolver,
            settings.fetch_user_agent,
            not settings.ignore_tls_errors,
            timeout=_IMAGE_FETCH_TIMEOUT,
        ) as fetcher:
            fetched = await fetcher.get(url, max_bytes + 1)
    except RefusedFetch:
        raise field_error(
            field, "the URL's address may not be fetched (crawl.allowed_hosts opens it)"
        ) from None
    if fetched is None:
        raise field_error(field, "the image could not be fetched")
    if fetched.status != 200:
        raise field_error(field, f"fetching the image answered HTTP {fetched.status}")
    if len(fetched.body) > max_bytes:
        raise field_error(field, f"the image is larger than {max_bytes} bytes")
    if not fetched.body:
        raise field_error(field, "the image is empty")
    return fetched.body


def checked_constraint(schema: Any, json_mode: bool, field: str) -> dict[str, Any] | None:
    """The schema after its metaschema and grammar check (400 naming `field`)."""
    if schema is not None and not isinstance(schema, dict):
        raise field_error(field, "the schema must be a JSON object")
    try:
        check_schema(schema, json_mode)
    except SchemaError as error:
        raise field_error(field, str(error)) from None
    return schema


def check_max_tokens(value: int | None, limits: LimitsSection, field: str) -> int | None:
    if value is not None and not 1 <= value <= limits.max_new_tokens:
        raise field_error(
            field, f"must be from 1 to {limits.max_new_tokens} (limits.max_new_tokens)"
        )
    return value


async def open_stream(
    items: AsyncIterator[TextDelta | ChatResult],
) -> AsyncIterator[TextDelta | ChatResult]:
    """The stream with its first item read now, so bad input still gets its 4xx before the 200
    of a stream; the source is closed however the stream ends (a client gone)."""
    first, rest = await _first_then_rest(items)
    return _with_first(first, rest)


async def _first_then_rest(
    items: AsyncIterator[TextDelta | ChatResult],
) -> tuple[TextDelta | ChatResult, AsyncIterator[TextDelta | ChatResult]]:
    """The first item now (none: a 400), and the rest."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        raise InvalidRequest("the model gave no answer") from None
    except BaseException:
        await _close(items)
        raise
    return first, items


async def _close(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


async def _with_first(
    first: TextDelta | ChatResult, rest: AsyncIterator[TextDelta | ChatResult]
) -> AsyncIterator[TextDelta | ChatResult]:
    """`first` then the rest; `rest` is closed however the stream ends."""
    try:
        yield first
        if not isinstance(first, ChatResult):
            async for item in rest:
                yield item
    finally:
        await _close(rest)


@lru_cache(maxsize=64)
def _wordpiece(snapshot: Path) -> bool:
    """Whether the checkpoint's tokenizer is WordPiece (BERT's, BLIP's): llguidance reads
    byte-level BPE and SentencePiece vocabularies only."""
    try:
        with (snapshot / "tokenizer.json").open("rb") as file:
            model = json.load(file).get("model") or {}
    except FileNotFoundError:
        return (snapshot / "vocab.txt").is_file()
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(model, dict) and model.get("type") == "WordPiece"


def check_constrainable(
    registry: ModelRegistry, model: str | None, options: GenerationOptions, field: str
) -> None:
    """A 400 before Triton when a constraint is asked of a model whose tokenizer cannot take
    one (the stub would fail the whole request)."""
    if options.json_schema is None and not options.json_mode:
        return
    found = registry.catalog.find(model, CHAT_TASK)
    if found is None:
        return  # the service answers 404 for it
    snapshot = snapshot_path(registry.hub_dir, found.entry.hf_model)
    if snapshot is not None and _wordpiece(Path(snapshot)):
        raise field_error(
            field, f"model '{found.entry.id}' cannot constrain its output (WordPiece tokenizer)"
        )
