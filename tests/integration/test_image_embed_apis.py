"""Images in every embedding dialect, on the real Triton with the tiny CLIP: Infinity's
`modality: image` and Jina's `{text}`/`{image}` objects on /v1/embeddings, Cohere's `images` and
`image_url` inputs on /v2/embed, multipart /api/embed; each the vectors JSON /api/embed gives
for the same image. http(s) images only through the crawl proxy's address policy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from frontend.core.config import Settings
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.images import b64, encode, png_header
from tests.integration.fixtures import RunningApi
from tools.build_test_models import TINY_CLIP, TINY_CLIP_IMMICH, build_test_models

CLIP = "tiny-clip-immich"
TEXT = "a dog on a beach"


@pytest.fixture(scope="module")
def clip(api: RunningApi, data_dir: Path) -> str:
    """The tiny CLIP in Immich's layout, added at runtime (as tests/integration/test_immich)."""
    build_test_models(data_dir, "clip-immich")
    with api.client() as client:
        added = client.post(
            "/api/models",
            json={"task": "image_embedding", "hf_model": TINY_CLIP_IMMICH, "id": CLIP},
        )
    assert added.status_code in (200, 201, 409), added.text
    return CLIP


def photo(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels))


PHOTOS = [photo(1), photo(2), encode(Image.fromarray(np.full((30, 50, 3), 200, np.uint8)), "JPEG")]


def data_url(data: bytes, kind: str = "image/png") -> str:
    return b64(data, kind)


@pytest.fixture(scope="module")
def reference(clip: str, api: RunningApi) -> dict[str, Any]:
    """What JSON /api/embed answers: the text's vector and each photo's."""
    with api.client() as client:
        body = {"model": clip, "texts": [TEXT], "images": [b64(p) for p in PHOTOS]}
        answer = client.post("/api/embed", json=body)
    assert answer.status_code == 200, answer.text
    vectors = np.asarray(answer.json()["embeddings"], dtype=np.float32)
    return {"text": vectors[0], "images": vectors[1:]}


def assert_same(got: Any, expected: np.ndarray) -> None:
    vector = np.asarray(got, dtype=np.float32)
    assert vector.shape == expected.shape
    cosine = float(vector @ expected / (np.linalg.norm(vector) * np.linalg.norm(expected)))
    assert cosine >= 0.9999, cosine


def test_infinity_image_modality_equals_api_embed(
    client: httpx.Client, clip: str, reference: dict[str, Any]
) -> None:
    inputs = [data_url(PHOTOS[0]), b64(PHOTOS[1]), data_url(PHOTOS[2], "image/jpeg")]
    for path in ("/v1/embeddings", "/embeddings"):  # Infinity's own path has no /v1
        response = client.post(path, json={"model": clip, "modality": "image", "input": inputs})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert [item["index"] for item in data] == [0, 1, 2]
        for item, expected in zip(data, reference["images"], strict=True):
            assert_same(item["embedding"], expected)
    one = client.post(
        "/v1/embeddings", json={"model": clip, "modality": "image", "input": inputs[0]}
    )
    assert_same(one.json()["data"][0]["embedding"], reference["images"][0])


def test_jina_objects_mix_texts_and_images_in_order(
    client: httpx.Client, clip: str, reference: dict[str, Any]
) -> None:
    body = {
        "model": clip,
        "input": [{"image": data_url(PHOTOS[1])}, {"text": TEXT}, {"image": b64(PHOTOS[0])}, TEXT],
    }
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    got = [item["embedding"] for item in response.json()["data"]]
    expected = [
        reference["images"][1],
        reference["text"],
        reference["images"][0],
        reference["text"],
    ]
    for vector, want in zip(got, expected, strict=True):
        assert_same(vector, want)


def test_a_transformers_clip_answers_the_dialects_as_api_embed(
    client: httpx.Client, api: RunningApi, data_dir: Path
) -> None:
    build_test_models(data_dir, "clip")
    added = client.post(
        "/api/models", json={"task": "image_embedding", "hf_model": TINY_CLIP, "id": "tiny-clip"}
    )
    assert added.status_code in (200, 201, 409), added.text
    body = {"model": "tiny-clip", "texts": [TEXT], "images": [b64(PHOTOS[0])]}
    embedded = client.post("/api/embed", json=body)
    assert embedded.status_code == 200, embedded.text
    expected = embedded.json()["embeddings"]
    jina = client.post(
        "/v1/embeddings",
        json={"model": "tiny-clip", "input": [{"image": data_url(PHOTOS[0])}, {"text": TEXT}]},
    )
    assert jina.status_code == 200, jina.text
    got = [item["embedding"] for item in jina.json()["data"]]
    assert_same(got[0], np.asarray(expected[1], dtype=np.float32))
    assert_same(got[1], np.asarray(expected[0], dtype=np.float32))
    cohere = client.post("/v2/embed", json={"model": "tiny-clip", "images": [data_url(PHOTOS[0])]})
    assert cohere.status_code == 200, cohere.text
    assert_same(cohere.json()["embeddings"]["float"][0], np.asarray(expected[1], np.float32))


def test_openai_sdk_sends_images_with_infinitys_modality(
    api: RunningApi, clip: str, reference: dict[str, Any]
) -> None:
    from openai import OpenAI

    sdk = OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
    inputs = [data_url(p) for p in PHOTOS[:2]]
    # Unasked, the SDK requests base64 and decodes it itself; float comes as numbers.
    default = sdk.embeddings.create(model=clip, input=inputs, extra_body={"modality": "image"})
    floats = sdk.embeddings.create(
        model=clip, input=inputs, encoding_format="float", extra_body={"modality": "image"}
    )
    for result in (default, floats):
        for item, expected in zip(result.data, reference["images"][:2], strict=True):
            assert_same(item.embedding, expected)
    texts = sdk.embeddings.create(model=clip, input=[TEXT], encoding_format="float")
    assert_same(texts.data[0].embedding, reference["text"])  # the CLIP text tower


def test_cohere_sdk_embeds_images_by_type(
    api: RunningApi, clip: str, reference: dict[str, Any]
) -> None:
    import cohere

    v2 = cohere.ClientV2(api_key="unused", base_url=api.url)
    result = v2.embed(
        model=clip,
        input_type="image",
        images=[data_url(PHOTOS[2], "image/jpeg")],
        embedding_types=["float", "ubinary"],
    )
    assert result.embeddings.float_ is not None and result.embeddings.ubinary is not None
    assert_same(result.embeddings.float_[0], reference["images"][2])
    packed = np.packbits(np.asarray(result.embeddings.float_) > 0, axis=1)
    np.testing.assert_array_equal(np.asarray(result.embeddings.ubinary), packed)
    assert result.images is not None
    image = result.images[0]
    assert (image.width, image.height, image.format) == (50, 30, "jpeg")
    assert result.meta and result.meta.billed_units and result.meta.billed_units.images == 1
    texts = v2.embed(model=clip, input_type="search_query", texts=[TEXT], embedding_types=["float"])
    assert texts.embeddings.float_ is not None
    assert_same(texts.embeddings.float_[0], reference["text"])


def test_cohere_content_inputs_keep_their_order(
    client: httpx.Client, clip: str, reference: dict[str, Any]
) -> None:
    inputs = [
        {"content": [{"type": "image_url", "image_url": {"url": data_url(PHOTOS[0])}}]},
        {"content": [{"type": "text", "text": TEXT}]},
    ]
    body = {"model": clip, "inputs": inputs, "embedding_types": ["float", "base64"]}
    response = client.post("/v2/embed", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    floats = answer["embeddings"]["float"]
    assert_same(floats[0], reference["images"][0])
    assert_same(floats[1], reference["text"])
    decoded = np.frombuffer(
        __import__("base64").b64decode(answer["embeddings"]["base64"][0]), "<f4"
    )
    np.testing.assert_array_equal(decoded, np.asarray(floats[0], dtype=np.float32))
    assert answer["texts"] == [TEXT] and answer["images"][0]["format"] == "png"


def test_multipart_api_embed_equals_json(
    client: httpx.Client, clip: str, reference: dict[str, Any]
) -> None:
    files = [("images", ("a.png", PHOTOS[0], "image/png")), ("images", ("b", PHOTOS[1], None))]
    response = client.post("/api/embed", data={"model": clip, "texts": TEXT}, files=files)
    assert response.status_code == 200, response.text
    vectors = response.json()["embeddings"]
    assert len(vectors) == 3
    assert_same(vectors[0], reference["text"])
    assert_same(vectors[1], reference["images"][0])
    assert_same(vectors[2], reference["images"][1])
    json_texts = client.post("/api/embed", json={"texts": ["hello", "homelab"]}).json()
    texts_only = client.post("/api/embed", data={"texts": ["hello", "homelab"]})  # url-encoded
    assert texts_only.status_code == 200, texts_only.text
    assert texts_only.json()["model_used"] == "minilm"  # the default text model, as JSON
    np.testing.assert_array_equal(texts_only.json()["embeddings"], json_texts["embeddings"])


def test_a_multipart_embed_runs_as_a_job_too(
    client: httpx.Client, clip: str, reference: dict[str, Any]
) -> None:
    files = [("images", ("a.png", PHOTOS[0], "image/png"))]
    created = client.post(
        "/api/embed",
        data={"model": clip},
        files=files,
        headers={"Prefer": "respond-async"},
    )
    assert created.status_code == 202, created.text
    job = client.get(created.headers["Location"], params={"wait": 60}).json()
    assert job["status"] == "succeeded", job
    assert_same(job["result"]["embeddings"][0], reference["images"][0])


def test_a_text_model_asked_for_images_names_the_image_models(
    client: httpx.Client, clip: str
) -> None:
    image = data_url(PHOTOS[0])
    openai = client.post(
        "/v1/embeddings", json={"model": "minilm", "modality": "image", "input": [image]}
    )
    assert openai.status_code == 400, openai.text
    error = openai.json()["error"]
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert "text embedding model" in error["message"] and clip in error["message"]
    for response in (
        client.post("/v2/embed", json={"model": "minilm", "images": [image]}),
        client.post("/api/embed", json={"model": "minilm", "images": [b64(PHOTOS[0])]}),
        client.post("/api/embed", data={"model": "minilm"}, files={"images": PHOTOS[0]}),
    ):
        assert response.status_code == 400, response.text
        envelope = response.json()["error"]
        assert envelope["code"] == "INVALID_REQUEST" and clip in envelope["message"]
        assert clip in envelope["details"]["available_models"]


MANY = [data_url(photo(3, (1, 1)))] * 1000  # small: the count, not the body size, refuses
OPENAI_HOSTILE = [
    ({"modality": "image", "input": ["data:text/plain;base64,aGk="]}, "input.0", "data: URL"),
    ({"modality": "image", "input": ["data:image/png;base64,@@@"]}, "input.0", "base64"),
    ({"modality": "image", "input": ["file:///etc/passwd"]}, "input.0", "http(s)"),
    ({"modality": "image", "input": ["http://127.0.0.1:9/a.png"]}, "input.0", "may not be"),
    ({"modality": "image", "input": ["http://[::1]/a.png"]}, "input.0", "may not be"),
    ({"modality": "image", "input": [b64(b"not an image")]}, "input.0", "not a supported image"),
    ({"modality": "image", "input": [b64(png_header(9000, 10))]}, "input.0", "largest side"),
    ({"modality": "image", "input": MANY}, None, "too many images"),
    ({"modality": "audio", "input": ["x"]}, "modality", ""),
    ({"input": [{"image": 5}]}, "input.0", "{image}"),
    ({"input": [TEXT, {"text": "a", "image": data_url(PHOTOS[0])}]}, "input.1", "{image}"),
    ({"input": [{"video": "x"}]}, "input.0", "{text}"),
    ({"input": [None]}, "input.0", "must be a text"),
]


@pytest.mark.parametrize(("body", "param", "words"), OPENAI_HOSTILE)
def test_hostile_openai_inputs_get_openais_400(
    client: httpx.Client, clip: str, body: dict[str, Any], param: str | None, words: str
) -> None:
    response = client.post("/v1/embeddings", json={"model": clip, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code", "request_id"}
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"images": ["data:image/png;base64,!!"]}, "images.0"),
        ({"images": [data_url(b"GIF89a corrupt")]}, "images.0"),
        ({"images": [data_url(png_header(10, 9000))]}, "largest side"),
        ({"images": MANY, "input_type": "image"}, "too many images"),
        ({"images": [5]}, "images.0"),
        ({"input_type": "image", "texts": ["a"]}, "needs images"),
        ({"inputs": [{"content": [{"type": "video", "text": "x"}]}]}, "text or image_url"),
        (
            {
                "inputs": [
                    {
                        "content": [
                            {"type": "text", "text": "a"},
                            {"type": "image_url", "image_url": {"url": data_url(PHOTOS[0])}},
                        ]
                    }
                ]
            },
            "one image per input",
        ),
        ({"images": ["http://localhost/a.png"]}, "may not be fetched"),
    ],
)
def test_hostile_cohere_inputs_get_a_400_envelope(
    client: httpx.Client, clip: str, body: dict[str, Any], words: str
) -> None:
    response = client.post("/v2/embed", json={"model": clip, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and words in error["message"], error


@pytest.mark.parametrize(
    ("data", "files", "words"),
    [
        ({"model": CLIP}, [("images", ("a", b"not an image"))], "image 0"),
        ({"model": CLIP}, [("images", ("a", png_header(9000, 9000)))], "largest side"),
        ({"model": CLIP}, [("images", ("a", b""))], "empty"),
        ({"model": CLIP, "images": "text, not a file"}, [("texts", ("a", b"x"))], "file"),
        ({"model": CLIP}, [("images", (f"{i}", photo(3, (1, 1)))) for i in range(1000)], "files"),
        ({"model": CLIP}, [("images", (f"{i}", PHOTOS[0])) for i in range(9)], "too many"),
        ({"model": CLIP, "colour": "red"}, [("images", ("a", PHOTOS[0]))], "colour"),
        ({"model": CLIP, "dimensions": "many"}, [("images", ("a", PHOTOS[0]))], "dimensions"),
    ],
)
def test_hostile_multipart_gets_a_400_envelope(
    client: httpx.Client,
    clip: str,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes]]],
    words: str,
) -> None:
    response = client.post("/api/embed", data=data, files=files)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and words in error["message"], error


class _Images(BaseHTTPRequestHandler):
    """A loopback site: /a.png, a redirect to it, a 404, and a body over the size limit."""

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/a.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = {"/a.png": PHOTOS[0], "/big.png": b"\0" * (5 * 1024 * 1024)}.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def open_api(settings: Settings, triton: EmbeddedTriton, clip: str) -> Iterator[RunningApi]:
    """A frontend whose crawl policy lets loopback in (crawl.allowed_hosts), as an operator
    opens a LAN host: image URLs are fetched through the same proxy as crawls."""
    crawl = settings.crawl.model_copy(update={"allowed_hosts": ["127.0.0.1"]})
    with own_frontend(settings, triton, crawl=crawl) as api:
        yield api


def test_image_urls_are_fetched_through_the_crawl_policy(
    open_api: RunningApi, client: httpx.Client, site: str, clip: str, reference: dict[str, Any]
) -> None:
    with open_api.client() as http:
        for url in (f"{site}/a.png", f"{site}/moved"):  # the redirect hop is checked too
            body = {"model": clip, "modality": "image", "input": [url]}
            response = http.post("/v1/embeddings", json=body)
            assert response.status_code == 200, response.text
            assert_same(response.json()["data"][0]["embedding"], reference["images"][0])
        jina = http.post(
            "/v1/embeddings", json={"model": clip, "input": [{"image": f"{site}/a.png"}]}
        )
        assert_same(jina.json()["data"][0]["embedding"], reference["images"][0])
        for path, words in (("/missing.png", "HTTP 404"), ("/big.png", "larger than")):
            body = {"model": clip, "modality": "image", "input": [f"{site}{path}"]}
            refused = http.post("/v1/embeddings", json=body)
            assert refused.status_code == 400, refused.text
            assert words in refused.json()["error"]["message"]
    # the shared frontend keeps the default policy: loopback is refused before any connection
    body = {"model": clip, "modality": "image", "input": [f"{site}/a.png"]}
    refused = client.post("/v1/embeddings", json=body)
    assert refused.status_code == 400
    assert "may not be fetched" in refused.json()["error"]["message"]
