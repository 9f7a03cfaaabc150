"""Ollama's and OpenAI's chat dialects on a fake vision service, through the real ollama and
openai clients: what reaches the service, the answers' shapes, and the refusals."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from fastapi import FastAPI
from openai import AsyncOpenAI, BadRequestError, NotFoundError
from PIL import Image

from frontend.app import create_app
from frontend.compat.chat_common import decode_base64_image, get_chat_backend
from frontend.core.config import load_settings
from frontend.core.errors import APIError, InvalidRequest, ModelNotFound
from frontend.crawl.service import CrawlService
from frontend.models.registry import ModelRegistry
from frontend.vision.schemas import ChatRequest, ChatResult, TextDelta

PET = {
    "type": "object",
    "properties": {"kind": {"enum": ["cat", "dog"]}},
    "required": ["kind"],
}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = png()
PNG_B64 = base64.b64encode(PNG).decode()


@dataclass
class FakeVision:
    """Answers "a red square" in two deltas; records each request and keep_alive."""

    seen: list[tuple[ChatRequest, float | None]] = field(default_factory=list)
    closed: int = 0

    def _check(self, request: ChatRequest) -> None:
        if request.model not in (None, "tiny-vlm"):
            raise ModelNotFound(f"model '{request.model}' not found", {"model_id": request.model})
        for message in request.messages:
            if any(not image.startswith(b"\x89PNG") for image in message.images):
                raise InvalidRequest("image 0 cannot be decoded")

    def _result(self, request: ChatRequest) -> ChatResult:
        text = '{"kind":"cat"}' if request.options.json_schema else "a red square"
        return ChatResult(text, "tiny-vlm", 11, 3, "stop", 1.5, 2.0, 10.0)

    async def chat(self, request: ChatRequest, keep_alive: float | None) -> ChatResult:
        self.seen.append((request, keep_alive))
        self._check(request)
        return self._result(request)

    async def stream(
        self, request: ChatRequest, keep_alive: float | None
    ) -> AsyncIterator[TextDelta | ChatResult]:
        self.seen.append((request, keep_alive))
        self._check(request)
        try:
            yield TextDelta("a red")
            yield TextDelta(" square")
            yield self._result(request)
        finally:
            self.closed += 1


@pytest.fixture
def fake() -> FakeVision:
    return FakeVision()


@pytest.fixture
def app(tmp_path: Path, fake: FakeVision) -> FastAPI:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        models={
            "image_caption": [{"id": "tiny-vlm", "hf_model": "homelab-test/tiny-vlm"}],
            "text_embedding": [{"id": "minilm", "hf_model": "org/minilm"}],
        },
        limits={"max_images_per_request": 4, "max_new_tokens": 64},
        crawl={"allowed_hosts": ["localhost"]},
    )
    app = create_app(settings)
    # What the lifespan would make, without Triton: the catalog and the crawl policy.
    app.state.registry = ModelRegistry(app.state.settings, gateway=None)  # type: ignore[arg-type]
    app.state.crawl = CrawlService(app.state.settings.crawl)
    app.state.model_service = app.state.downloads = None  # /api/pull refuses before using them
    app.dependency_overrides[get_chat_backend] = lambda: fake
    return app


def transport(app: FastAPI) -> httpx.AsyncHTTPTransport:
    return httpx.ASGITransport(app=app)  # type: ignore[return-value]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def ollama_client(app: FastAPI) -> ollama.AsyncClient:
    return ollama.AsyncClient(host="http://127.0.0.1", transport=transport(app))


def openai_client(app: FastAPI) -> AsyncOpenAI:
    http = httpx.AsyncClient(transport=transport(app))
    return AsyncOpenAI(base_url="http://127.0.0.1/v1", api_key="x", http_client=http, max_retries=0)


def test_ollama_generate_passes_prompt_images_and_options(app: FastAPI, fake: FakeVision) -> None:
    async def go() -> Any:
        return await ollama_client(app).generate(
            model="tiny-vlm:latest",
            prompt="What is it?",
            system="Be brief.",
            images=[PNG],
            stream=False,
            format=PET,
            keep_alive="5m",
            options={"temperature": 0.5, "num_predict": 20, "top_k": 7, "seed": 3, "stop": ["."]},
        )

    answer = run(go())
    assert answer.response == '{"kind":"cat"}' and answer.done and answer.done_reason == "stop"
    assert answer.model == "tiny-vlm:latest"
    assert answer.prompt_eval_count == 11 and answer.eval_count == 3
    assert answer.total_duration == 10_000_000 and answer.load_duration == 1_500_000
    assert answer.eval_duration == 6_500_000
    request, keep_alive = fake.seen[0]
    assert keep_alive == 300.0 and request.model == "tiny-vlm"
    assert [(m.role, m.text) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "What is it?"),
    ]
    assert request.messages[1].images == (PNG,)
    opts = request.options
    assert (opts.temperature, opts.max_new_tokens, opts.top_k, opts.seed) == (0.5, 20, 7, 3)
    assert opts.stop == (".",) and opts.json_schema == PET and not opts.json_mode


def test_ollama_chat_streams_ndjson_by_default(app: FastAPI, fake: FakeVision) -> None:
    async def go() -> list[Any]:
        parts = await ollama_client(app).chat(
            model="tiny-vlm",
            messages=[{"role": "user", "content": "hi", "images": [PNG_B64]}],
            stream=True,
            format="json",
        )
        return [part async for part in parts]

    parts = run(go())
    assert "".join(p.message.content for p in parts) == "a red square"
    assert [p.done for p in parts] == [False, False, True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 3
    assert fake.seen[0][0].options.json_mode and fake.closed == 1


def test_ollama_chat_without_stream_field_streams(app: FastAPI) -> None:
    """paperless-gpt sends no `stream` and `"format": ""`; LLM Vision adds unknown fields."""
    body = {
        "model": "tiny-vlm",
        "messages": [{"role": "user", "content": "hi", "images": [PNG_B64]}],
        "format": "",
        "options": {"temperature": 0, "num_ctx": 4096, "mirostat": 1},
        "prompt": [],
        "images": [PNG_B64],
        "system": "ignored",
    }

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport(app), base_url="http://127.0.0.1") as c:
            return await c.post("/api/chat", json=body)

    response = run(go())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1]["done"] is True and "context" not in lines[-1]
    assert "".join(line["message"]["content"] for line in lines) == "a red square"


def test_ollama_show_and_list_name_capabilities(app: FastAPI) -> None:
    async def go() -> tuple[Any, Any, Any]:
        client = ollama_client(app)
        return (
            await client.show("tiny-vlm:latest"),
            await client.show("minilm"),
            await client.list(),
        )

    vision, embedder, listed = run(go())
    assert set(vision.capabilities) == {"completion", "vision"}
    assert embedder.capabilities == ["embedding"]
    names = {m.model: m.details.family for m in listed.models}
    assert names == {"tiny-vlm:latest": "vision", "minilm:latest": "embedding"}


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/generate", {"model": "tiny-vlm", "prompt": "x", "images": ["@@@"]}, 400, "base64"),
        ("/api/generate", {"model": "nope", "prompt": "x", "stream": False}, 404, "not found"),
        ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "not found"),  # before the 200
        (
            "/api/generate",
            {"model": "tiny-vlm", "prompt": "x", "format": {"type": "strin"}},
            400,
            "not a JSON schema",
        ),
        ("/api/generate", {"model": "tiny-vlm", "prompt": "x", "format": "yaml"}, 400, "format"),
        (
            "/api/generate",
            {"model": "tiny-vlm", "prompt": "x", "options": {"num_predict": 10**9}},
            400,
            "num_predict",
        ),
        (
            "/api/chat",
            {"model": "tiny-vlm", "messages": [{"role": "user", "images": [PNG_B64] * 1000}]},
            400,
            "too many images",
        ),
        (
            "/api/chat",
            {"model": "tiny-vlm", "messages": [{"role": "user", "images": ["aGVsbG8="]}]},
            400,
            "cannot be decoded",
        ),
        ("/api/chat", {"model": "tiny-vlm", "messages": [{"role": "tool"}]}, 400, "role"),
        ("/api/generate", {"model": "tiny-vlm", "keep_alive": "soon", "prompt": "x"}, 400, "keep"),
        ("/api/show", {"model": "nope"}, 404, "not found"),
        ("/api/pull", {"model": "llava"}, 404, "Hugging Face id"),
    ],
)
def test_ollama_refusals_in_ollamas_shape(
    app: FastAPI, path: str, body: dict[str, Any], status: int, words: str
) -> None:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport(app), base_url="http://127.0.0.1") as c:
            return await c.post(path, json=body)

    response = run(go())
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str)
    assert words in error["error"]


def test_ollama_client_raises_the_error_message(app: FastAPI) -> None:
    async def go() -> None:
        await ollama_client(app).generate(model="nope", prompt="x", stream=False)

    with pytest.raises(ollama.ResponseError) as raised:
        run(go())
    assert raised.value.status_code == 404 and "not found" in raised.value.error


def test_openai_chat_with_image_parts(app: FastAPI, fake: FakeVision) -> None:
    url = f"data:image/png;base64,{PNG_B64}"

    async def go() -> Any:
        return await openai_client(app).chat.completions.create(
            model="tiny-vlm",
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is it?"},
                        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                    ],
                },
            ],
            max_completion_tokens=12,
            temperature=0.2,
            top_p=0.9,
            seed=5,
            stop="END",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "pet", "schema": PET, "strict": True},
            },
        )

    answer = run(go())
    assert json.loads(answer.choices[0].message.content) == {"kind": "cat"}
    assert answer.choices[0].finish_reason == "stop" and answer.object == "chat.completion"
    assert answer.usage.prompt_tokens == 11 and answer.usage.total_tokens == 14
    request = fake.seen[0][0]
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[1].images == (PNG,) and request.messages[1].text == "What is it?"
    opts = request.options
    assert (opts.max_new_tokens, opts.temperature, opts.top_p, opts.seed) == (12, 0.2, 0.9, 5)
    assert opts.stop == ("END",) and opts.json_schema == PET


def test_openai_stream_with_usage(app: FastAPI, fake: FakeVision) -> None:
    async def go() -> list[Any]:
        stream = await openai_client(app).chat.completions.create(
            model="tiny-vlm",
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
            stream_options={"include_usage": True},
            response_format={"type": "json_object"},
        )
        return [chunk async for chunk in stream]

    chunks = run(go())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a red square"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert fake.seen[0][0].options.json_mode and fake.closed == 1


class _Images(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (200, PNG) if self.path == "/red.png" else (404, b"no")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"localhost:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_openai_image_urls_are_fetched_under_the_crawl_policy(
    app: FastAPI, fake: FakeVision, image_server: str
) -> None:
    """localhost is opened by crawl.allowed_hosts; 127.0.0.1 (the same server) is not."""

    def ask(url: str) -> Any:
        async def go() -> Any:
            return await openai_client(app).chat.completions.create(
                model="tiny-vlm",
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
                ],
            )

        return run(go())

    assert ask(f"http://{image_server}/red.png").choices[0].message.content == "a red square"
    assert fake.seen[-1][0].messages[0].images == (PNG,)
    port = image_server.split(":")[1]
    with pytest.raises(BadRequestError, match="may not be fetched"):
        ask(f"http://127.0.0.1:{port}/red.png")
    with pytest.raises(BadRequestError, match="HTTP 404"):
        ask(f"http://{image_server}/missing.png")
    with pytest.raises(BadRequestError, match="data: URL or an http"):
        ask("file:///etc/passwd")


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"enum": 3}}}},
            "response_format.json_schema.schema",
            "not a JSON schema",
        ),
        ({"max_tokens": 10**9}, "max_tokens", "limits.max_new_tokens"),
        ({"n": 2}, "n", ""),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages.0.content.0.type",
            "text or image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": "data:image/png;base64,@@"}],
                    }
                ]
            },
            "messages.0.content.0.image_url.url",
            "base64",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": f"data:,{PNG_B64}"}] * 5,
                    }
                ]
            },
            "images",
            "too many images",
        ),
    ],
)
def test_openai_refusals_in_openais_shape(
    app: FastAPI, body: dict[str, Any], param: str, words: str
) -> None:
    full = {"model": "tiny-vlm", "messages": [{"role": "user", "content": "hi"}], **body}

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport(app), base_url="http://127.0.0.1") as c:
            return await c.post("/v1/chat/completions", json=full)

    response = run(go())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]


def test_openai_unknown_model_is_404(app: FastAPI) -> None:
    async def go() -> None:
        await openai_client(app).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(NotFoundError):
        run(go())


def test_models_list_has_the_vision_model(app: FastAPI) -> None:
    async def go() -> list[str]:
        return [m.id async for m in openai_client(app).models.list()]

    assert set(run(go())) == {"tiny-vlm", "minilm"}


@pytest.mark.parametrize(
    "encoded",
    [
        PNG_B64,
        f"data:image/png;base64,{PNG_B64}",
        "\r\n".join(PNG_B64[i : i + 76] for i in range(0, len(PNG_B64), 76)),  # MIME lines
        f"  {PNG_B64[:10]}\n{PNG_B64[10:]}\t",
    ],
)
def test_base64_images_decode_with_line_breaks_and_a_data_url(encoded: str) -> None:
    assert decode_base64_image(encoded, "images.0") == PNG


@pytest.mark.parametrize("encoded", ["@@@", PNG_B64[:-1] + "!", PNG_B64 + "===", "é" + PNG_B64, ""])
def test_bad_base64_images_are_a_400_naming_the_field(encoded: str) -> None:
    with pytest.raises(APIError) as caught:
        decode_base64_image(encoded, "images.0")
    assert caught.value.status == 400
    assert "images.0" in str(caught.value.details)
