"""Vision-language answers on the caption task's Triton models: check and decode the request,
send it as one streamed Triton request, and hand back the text (whole, or as it is generated)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import tritonclient.grpc as grpcclient

from frontend.core.config import LimitsSection, ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.images.decode import ImageLimits, decode_image
from frontend.models.cache import snapshot_path
from frontend.models.registry import ModelRegistry
from frontend.tasks.caption import PLAIN_PROMPTS
from frontend.tasks.caption_request import pack_images
from frontend.vision.schemas import ChatRequest, ChatResult, GenerationOptions, TextDelta

# Captioning models look at a few hundred pixels (BLIP 384, LLaVA 336, Qwen2-VL ~1000):
# shipping a 12 MP photo's raw RGB to them would cost 36 MB per image for nothing.
MAX_SIDE = 1024
MAX_STOPS = 8
MAX_STOP_CHARS = 100
MAX_MESSAGES = 256
MAX_TEMPERATURE = 10.0


@dataclass
class Prepared:
    entry: ModelEntry
    inputs: list[grpcclient.InferInput]


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def check_options(options: GenerationOptions, limits: LimitsSection) -> dict[str, Any]:
    """The options as the model's REQUEST carries them; 400 for anything out of bounds."""
    if options.max_new_tokens is not None and not 1 <= options.max_new_tokens <= (
        limits.max_new_tokens
    ):
        raise _invalid(f"max_new_tokens must be from 1 to {limits.max_new_tokens}")
    if options.temperature is not None and not 0 <= options.temperature <= MAX_TEMPERATURE:
        raise _invalid(f"temperature must be from 0 to {MAX_TEMPERATURE:g}")
    if options.top_p is not None and not 0 < options.top_p <= 1:
        raise _invalid("top_p must be above 0 and at most 1")
    if options.top_k is not None and not 1 <= options.top_k <= 100_000:
        raise _invalid("top_k must be from 1 to 100000")
    if options.seed is not None and not 0 <= options.seed < 2**63:
        raise _invalid("seed must be from 0 to 2^63 - 1")
    if len(options.stop) > MAX_STOPS or not all(
        isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in options.stop
    ):
        raise _invalid(f"stop: at most {MAX_STOPS} strings of 1 to {MAX_STOP_CHARS} characters")
    chosen = {
        "max_new_tokens": options.max_new_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "top_k": options.top_k,
        "seed": options.seed,
        "stop": list(options.stop),
        "json_schema": options.json_schema,
        "json_mode": options.json_mode,
    }
    return {k: v for k, v in chosen.items() if v not in (None, [], False)}


@lru_cache(maxsize=256)
def _model_type(snapshot: Path) -> str | None:
    try:
        config = json.loads((snapshot / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def model_family(registry: ModelRegistry, entry: ModelEntry) -> str | None:
    """The checkpoint's model_type from its config.json in the local cache (None if absent)."""
    snapshot = snapshot_path(registry.hub_dir, entry.hf_model)
    return _model_type(Path(snapshot)) if snapshot is not None else None


async def prepare(
    registry: ModelRegistry, request: ChatRequest, limits: LimitsSection, stream: bool
) -> Prepared:
    """Pick the model, check the conversation and options, decode the images."""
    entry = registry.catalog.lookup(request.model, Task.IMAGE_CAPTION)
    messages = request.messages
    if not messages or len(messages) > MAX_MESSAGES:
        raise _invalid(f"send 1 to {MAX_MESSAGES} messages")
    blobs = [blob for message in messages for blob in message.images]
    if len(blobs) > limits.max_images_per_request:
        raise _invalid(
            f"too many images: {len(blobs)} > {limits.max_images_per_request} per request"
        )
    for message in messages:
        if len(message.text) > limits.max_text_chars:
            raise _invalid(f"a message's text is over {limits.max_text_chars} characters")
        if message.images and message.role != "user":
            raise _invalid("only user messages may carry images")
    if model_family(registry, entry) in PLAIN_PROMPTS and len(blobs) != 1:
        raise _invalid(f"model '{entry.id}' answers about exactly one image per request")
    options = check_options(request.options, limits)
    image_limits = ImageLimits(limits.max_image_pixels, limits.max_image_side)

    def decode_all() -> list[np.ndarray]:
        return [decode_image(blob, i, image_limits, MAX_SIDE) for i, blob in enumerate(blobs)]

    images = await anyio.to_thread.run_sync(decode_all)
    turns = [{"role": m.role, "text": m.text, "images": len(m.images)} for m in messages]
    return prepared(entry, images, turns, options, stream)


def prepared(
    entry: ModelEntry,
    images: list[np.ndarray],
    turns: list[dict[str, Any]],
    options: dict[str, Any],
    stream: bool,
) -> Prepared:
    """The Triton request for checked turns, decoded images and checked options."""
    body = json.dumps({"turns": turns, "options": options, "stream": stream})
    return Prepared(entry, _inputs(images, body))


def _inputs(images: list[np.ndarray], body: str) -> list[grpcclient.InferInput]:
    pixels, shapes = pack_images(images)
    tensors = []
    for name, array, kind in (
        ("IMAGES", pixels[np.newaxis], "UINT8"),
        ("IMAGE_SHAPES", shapes[np.newaxis], "INT32"),
        ("REQUEST", np.array([[body.encode("utf-8")]], dtype=np.object_), "BYTES"),
    ):
        tensor = grpcclient.InferInput(name, list(array.shape), kind)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


async def run(
    registry: ModelRegistry,
    prepared: Prepared,
    on_text: Callable[[str], None] | None,
    keep_alive: float | None = None,
) -> ChatResult:
    started = time.perf_counter()
    entry = prepared.entry
    load_ms = 0.0
    if not registry.is_loaded(entry.id):
        await registry.ensure_loaded(entry)
        load_ms = (time.perf_counter() - started) * 1000

    gateway = registry.gateway
    depth = entry.instances * len(gateway.replicas)

    async def call() -> dict[str, Any]:
        stats: dict[str, Any] = {}
        # Concurrent requests leave together, so Triton batches them whole
        async with registry.cohorts.slot(entry.id, depth, entry.max_batch_size):
            async for result in gateway.stream(
                entry.id, prepared.inputs, ["CAPTION", "STATS"], "STATS"
            ):
                delta = result.as_numpy("CAPTION")
                if delta is not None and on_text is not None:
                    text = delta.reshape(-1)[0].decode("utf-8")
                    if text:
                        on_text(text)
                found = result.as_numpy("STATS")
                if found is not None:
                    stats = json.loads(found.reshape(-1)[0])
        return stats

    stats = await registry.run(entry, call, keep_alive)
    return ChatResult(
        text=str(stats.get("text", "")),
        model=entry.id,
        prompt_tokens=int(stats.get("prompt_tokens", 0)),
        completion_tokens=int(stats.get("completion_tokens", 0)),
        done_reason="length" if stats.get("done_reason") == "length" else "stop",
        load_ms=round(load_ms, 3),
        prompt_ms=float(stats.get("prompt_ms", 0.0)),
        total_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def chat(
    registry: ModelRegistry,
    request: ChatRequest,
    *,
    limits: LimitsSection,
    keep_alive: float | None = None,
) -> ChatResult:
    """The whole answer to a conversation (APIError 4xx for bad input)."""
    prepared = await prepare(registry, request, limits, stream=False)
    return await run(registry, prepared, None, keep_alive)


async def stream(
    registry: ModelRegistry,
    request: ChatRequest,
    *,
    limits: LimitsSection,
    keep_alive: float | None = None,
) -> AsyncIterator[TextDelta | ChatResult]:
    """Text deltas as the model generates them, then the ChatResult. Closing the iterator (a
    client gone) cancels the Triton stream, which ends the sequence at its next step."""
    prepared = await prepare(registry, request, limits, stream=True)
    queue: asyncio.Queue[TextDelta | None] = asyncio.Queue()
    task = asyncio.ensure_future(
        run(registry, prepared, lambda text: queue.put_nowait(TextDelta(text)), keep_alive)
    )
    task.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (item := await queue.get()) is not None:
            yield item
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
