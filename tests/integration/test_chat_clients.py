"""The ollama and openai clients chatting with images through the real service and Triton (the
tiny LLaVA): streamed == whole, JSON schemas honoured, the model listings, hostile input 4xx."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import ollama
import pytest
from openai import OpenAI
from PIL import Image

from frontend.app import create_app
from frontend.core.config import Settings
from frontend.models.cache import snapshot_path
from frontend.triton.embedded import EmbeddedTriton
from tests.fake_hub import FakeHub
from tests.integration.conftest import serve_app
from tests.integration.fixtures import RunningApi
from tools.build_test_models import TINY_LLAVA

MODEL = "tiny-llava"
PULLED = "acme/tiny-vlm"  # the tiny LLaVA as the fake hub serves it to /api/pull
ANSWER = {"enum": ["cat", "dog", "bird"]}  # a few tokens: fits the test limit of 16
PET = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


IMAGE = png(7)
DATA_URL = "data:image/png;base64," + base64.b64encode(IMAGE).decode()


@pytest.fixture(scope="module")
def ol(api: RunningApi) -> ollama.Client:
    return ollama.Client(host=api.url, timeout=120)


@pytest.fixture(scope="module")
def oa(api: RunningApi) -> OpenAI:
    return OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_ollama_generate_streamed_equals_whole(ol: ollama.Client) -> None:
    whole = ol.generate(model=f"{MODEL}:latest", prompt="What is it?", images=[IMAGE], stream=False)
    assert whole.done and whole.done_reason in ("stop", "length") and whole.response
    assert whole.prompt_eval_count and whole.eval_count and whole.total_duration
    parts = list(ol.generate(model=MODEL, prompt="What is it?", images=[IMAGE], stream=True))
    assert "".join(p.response for p in parts) == whole.response
    assert parts[-1].done and parts[-1].eval_count == whole.eval_count


def test_ollama_chat_streamed_equals_whole_and_follows_a_schema(ol: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Which animal?", "images": [IMAGE]}]
    whole = ol.chat(model=MODEL, messages=messages, stream=False, format=ANSWER)
    assert json.loads(whole.message.content) in ANSWER["enum"]
    parts = list(ol.chat(model=MODEL, messages=messages, format=ANSWER, stream=True))
    assert "".join(p.message.content for p in parts) == whole.message.content
    generated = ol.generate(
        model=MODEL,
        prompt="?",
        images=[IMAGE],
        format=PET,
        options={"num_predict": 16},
        stream=True,
    )
    streamed = "".join(part.response for part in generated)
    jsonschema.validate(json.loads(streamed), PET)


def test_ollama_show_and_list_the_vision_model(ol: ollama.Client) -> None:
    shown = ol.show(MODEL)
    assert {"completion", "vision"} <= set(shown.capabilities or [])
    assert ol.show("minilm").capabilities == ["embedding"]
    names = [m.model for m in ol.list().models]
    assert f"{MODEL}:latest" in names and "minilm:latest" in names


def test_ollama_ps_lists_a_loaded_vision_model(ol: ollama.Client) -> None:
    ol.generate(model=MODEL, prompt="hi", images=[IMAGE], stream=False)
    assert f"{MODEL}:latest" in [m.model for m in ol.ps().models]


def test_openai_chat_streamed_equals_whole(oa: OpenAI) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe it."},
                {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "low"}},
            ],
        }
    ]
    whole = oa.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
    text = whole.choices[0].message.content
    assert text and whole.usage and whole.usage.completion_tokens > 0
    assert whole.usage.prompt_tokens > 0 and whole.choices[0].finish_reason in ("stop", "length")
    chunks = list(
        oa.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None and chunks[-1].usage == whole.usage


def test_openai_response_format_json_schema(oa: OpenAI) -> None:
    answer = oa.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": DATA_URL}]}],
        max_completion_tokens=16,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": ANSWER}},
    )
    assert json.loads(answer.choices[0].message.content or "") in ANSWER["enum"]
    listed = [m.id for m in oa.models.list()]
    assert MODEL in listed and "minilm" in listed


def test_text_only_chat_works(oa: OpenAI) -> None:
    answer = oa.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello?"}], max_tokens=4
    )
    assert answer.choices[0].message.content is not None


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/api/generate", {"prompt": "x", "images": ["not base64!"]}, "base64"),
        ("/api/generate", {"prompt": "x", "images": [base64.b64encode(b"junk").decode()]}, ""),
        ("/api/generate", {"prompt": "x", "format": {"type": 5}}, "not a JSON schema"),
        ("/api/generate", {"prompt": "x", "options": {"num_predict": 10**12}}, "num_predict"),
        ("/api/chat", {"messages": [{"role": "user", "images": ["aGk="] * 1000}]}, "too many"),
    ],
)
def test_hostile_ollama_requests_are_4xx(
    client: httpx.Client, path: str, body: dict[str, Any], words: str
) -> None:
    response = client.post(path, json={"model": MODEL, **body})
    assert 400 <= response.status_code < 500, response.text
    assert words in response.json()["error"]


def test_hostile_openai_requests_are_4xx(client: httpx.Client) -> None:
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"enum": 1}}}
    for extra in ({"response_format": bad_schema}, {"max_tokens": 10**12}):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"
    unknown = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=unknown).status_code == 404


def test_a_schema_on_a_wordpiece_model_is_refused(client: httpx.Client) -> None:
    """BLIP's WordPiece tokenizer cannot be read by the grammar library: a 400, not a 500."""
    image = base64.b64encode(IMAGE).decode()
    body = {"model": "tiny-blip", "prompt": "a", "images": [image], "format": "json"}
    response = client.post("/api/generate", json={**body, "stream": False})
    assert response.status_code == 400, response.text
    assert "cannot constrain" in response.json()["error"]


@pytest.fixture(scope="module")
def pull_api(settings: Settings, triton: EmbeddedTriton, tmp_path_factory: Any) -> Iterator[Any]:
    """A frontend of its own, with an empty cache, over a fake hub that serves the tiny LLaVA
    under another id: (its URL, its hub cache folder)."""
    snapshot = snapshot_path(settings.models_dir / "hub", TINY_LLAVA)
    assert snapshot is not None
    data_dir = tmp_path_factory.mktemp("pull-data")
    with FakeHub({PULLED: snapshot}, chunk_size=4096) as hub:
        own = settings.model_copy(
            deep=True,
            update={
                "data_dir": data_dir,
                "hub": settings.hub.model_copy(update={"endpoint": hub.url}),
                "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            },
        )
        server, thread, url = serve_app(create_app(own))
        yield url, data_dir / "models" / "hub", Path(snapshot)
        server.should_exit = True
        thread.join(30)


def test_ollama_pull_downloads_with_progress_lines(pull_api: Any) -> None:
    url, hub, source = pull_api
    lines = list(ollama.Client(host=url, timeout=120).pull(PULLED, stream=True))
    statuses = [line.status for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    progress = [line for line in lines if line.total]
    assert progress and progress[-1].completed == progress[-1].total  # the whole download
    done = [line.completed or 0 for line in progress]
    assert done == sorted(done)  # it only grows
    pulled = snapshot_path(hub, PULLED)
    assert pulled is not None
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (Path(pulled) / name).read_bytes() == (source / name).read_bytes()
    again = ollama.Client(host=url, timeout=120).pull(PULLED, stream=False)
    assert again.status == "success"  # already in the cache
