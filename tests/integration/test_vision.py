"""Prompted captions and visual questions on a real Triton (tiny LLaVA, Qwen2-VL, SmolVLM,
Florence-2 and BLIP): prompts and options, several images, batched answers equal to single ones,
streaming, hostile input."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from frontend.core.config import Settings
from frontend.core.errors import APIError
from frontend.models.registry import ModelRegistry
from frontend.triton.embedded import EmbeddedTriton
from frontend.triton.gateway import TritonGateway
from frontend.vision import service
from frontend.vision.schemas import ChatMessage, ChatRequest, ChatResult, GenerationOptions
from tests.integration.fixtures import ADMIN_KEY, RunningApi, concurrent_posts


def png(seed: int, size: tuple[int, int] = (40, 56)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def ask(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/caption", json=body)


FAMILIES = ["tiny-llava", "tiny-qwen2-vl", "tiny-smolvlm", "tiny-florence2", "tiny-blip"]


@pytest.mark.parametrize("model", FAMILIES)
def test_each_family_answers_a_prompted_caption(client: httpx.Client, model: str) -> None:
    plain = ask(client, model=model, image=b64(png(1)))
    prompted = ask(client, model=model, image=b64(png(1)), prompt="a picture of", seed=1)
    assert plain.status_code == prompted.status_code == 200, prompted.text
    assert prompted.json()["model_used"] == model
    assert isinstance(prompted.json()["caption"], str) and prompted.json()["caption"]
    # the prompt reaches the model: a different prompt, a different answer
    assert plain.json()["caption"] != prompted.json()["caption"]


def test_options_bound_the_answer(client: httpx.Client) -> None:
    short = ask(client, model="tiny-llava", image=b64(png(2)), max_new_tokens=1).json()
    assert short["done_reason"] == "length" and short["usage"]["completion_tokens"] == 1
    assert short["usage"]["prompt_tokens"] > 1
    assert short["usage"]["total_tokens"] == short["usage"]["prompt_tokens"] + 1
    one = short["caption"]
    many = ask(client, model="tiny-llava", image=b64(png(2)), max_new_tokens=12).json()["caption"]
    assert many.startswith(one) and len(many) > len(one)
    stop = many.split()[1][0] if len(many.split()) > 1 else many[-1]
    cut = ask(client, model="tiny-llava", image=b64(png(2)), max_new_tokens=12, stop=[stop])
    assert cut.status_code == 200 and stop not in cut.json()["caption"]
    assert many.startswith(cut.json()["caption"])


def test_a_question_about_two_pictures(client: httpx.Client) -> None:
    body = {"model": "tiny-llava", "batch": [b64(png(3)), b64(png(4))], "prompt": "compare"}
    together = ask(client, **body, together=True)
    assert together.status_code == 200, together.text
    assert isinstance(together.json()["caption"], str)
    apart = ask(client, **body).json()
    assert len(apart["captions"]) == 2 and together.json()["caption"] not in apart["captions"]
    assert len(apart["done_reasons"]) == 2 and apart["usage"]["completion_tokens"] > 0
    blip = ask(client, model="tiny-blip", batch=body["batch"], together=True)
    assert blip.status_code == 400  # BLIP reads one image per prompt


def _executions(triton: EmbeddedTriton, model: str) -> int:
    """How many times Triton ran the model's execute (batches, not requests)."""
    stats = httpx.get(f"http://{triton.http_url}/v2/models/{model}/stats", timeout=30).json()
    return int(stats["model_stats"][0]["execution_count"])


# Qwen2-VL: left padding under M-RoPE's 3-D positions; Florence-2: an encoder-decoder.
@pytest.mark.parametrize("model", ["tiny-llava", "tiny-qwen2-vl", "tiny-florence2"])
def test_batched_answers_equal_single_answers(
    api: RunningApi, client: httpx.Client, triton: EmbeddedTriton, model: str
) -> None:
    bodies = [
        {"model": model, "image": b64(png(10 + i)), "prompt": p, "max_new_tokens": n}
        for i, (p, n) in enumerate(
            [("describe", 8), ("what is this?", 3), ("", 8), ("count the cats please", 5)] * 2
        )
    ]
    alone = [ask(client, **body).json()["caption"] for body in bodies]
    before = _executions(triton, model)
    together = concurrent_posts(api, bodies, "/api/caption")
    after = _executions(triton, model)
    assert [r.json()["caption"] for r in together] == alone
    assert after - before < len(bodies)  # Triton joined some of them into one generate


def _request(**options: Any) -> ChatRequest:
    messages = (
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "What is in the picture?", (png(20),)),
    )
    return ChatRequest("tiny-llava", messages, GenerationOptions(**options))


async def in_own_registry(settings: Settings, triton: EmbeddedTriton, work: Any) -> Any:
    """`work(registry)` with a registry and gateway of this event loop's own (the app's live in
    the server's loop) on the session Triton."""
    gateway = TritonGateway(triton.grpc_url, admin_key=ADMIN_KEY)
    try:
        return await work(ModelRegistry(settings, gateway))
    finally:
        await gateway.close()


def test_streamed_text_equals_the_whole_answer(settings: Settings, triton: EmbeddedTriton) -> None:
    limits = settings.limits

    async def both(registry: ModelRegistry) -> tuple[list[Any], ChatResult]:
        chat = _request(max_new_tokens=12)
        pieces = [item async for item in service.stream(registry, chat, limits=limits)]
        return pieces, await service.chat(registry, chat, limits=limits)

    pieces, whole = asyncio.run(in_own_registry(settings, triton, both))
    *deltas, final = pieces
    assert isinstance(final, ChatResult)
    assert "".join(d.text for d in deltas) == final.text == whole.text
    assert len(deltas) > 1  # it really came in pieces
    assert whole.completion_tokens == 12 and whole.done_reason == "length"
    assert whole.prompt_tokens > 0 and whole.model == "tiny-llava"


@pytest.mark.parametrize(
    "body",
    [
        {"image": "not base64!"},
        {"image": b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)},  # corrupt
        {"image": b64(png(1)), "max_new_tokens": 10**9},
        {"image": b64(png(1)), "temperature": -1},
        {"image": b64(png(1)), "stop": ["x"] * 100},
        {"batch": [b64(png(1))] * 1000, "together": True},
    ],
    ids=["base64", "corrupt", "max-new-tokens", "temperature", "stops", "1000-images"],
)
def test_hostile_input_is_a_client_error(client: httpx.Client, body: dict[str, Any]) -> None:
    response = ask(client, model="tiny-llava", **body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in {"INVALID_REQUEST", "PAYLOAD_TOO_LARGE"}


def test_service_rejects_bad_requests(settings: Settings, triton: EmbeddedTriton) -> None:
    limits = settings.limits
    huge = ChatRequest(
        "tiny-llava", (ChatMessage("user", "hi", (png(1),) * 1000),), GenerationOptions()
    )
    for request, status in [
        (huge, 400),
        (_request(max_new_tokens=100_000), 400),
        (ChatRequest("no-such-model", _request().messages), 404),
    ]:
        with pytest.raises(APIError) as caught:
            asyncio.run(
                in_own_registry(
                    settings, triton, lambda r, q=request: service.chat(r, q, limits=limits)
                )
            )
        assert caught.value.status == status
