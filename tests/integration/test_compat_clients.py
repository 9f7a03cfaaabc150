"""The ecosystem's clients against the real service: each vector equals /api/embed's."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import MINILM_ID
from tests.integration.conftest import RunningApi

TEXTS = ["hello world", "A man is eating food.", "Ünïcödé and 日本語 text"]


@pytest.fixture(scope="module")
def expected(api: RunningApi) -> np.ndarray:
    with api.client() as http:
        response = http.post("/api/embed", json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["embeddings"], dtype=np.float32)


@pytest.fixture(scope="module")
def pooled(minilm_source: Path) -> np.ndarray:
    """TEI's `normalize: false` reference: sentence-transformers' all-MiniLM-L6-v2 (the real
    weights) with its Normalize module removed, i.e. the mean-pooled vectors."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_source), device="cpu")
    assert type(model[-1]).__name__ == "Normalize"
    del model[len(model) - 1]
    vectors = np.asarray(model.encode(TEXTS), dtype=np.float32)
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1).min() > 0.1  # not unit length
    return vectors


@pytest.mark.parametrize("encoding_format", [None, "float"])
def test_openai_sdk_embeddings_equal_api_embed(
    api: RunningApi, expected: np.ndarray, encoding_format: str | None
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
    extra = {"encoding_format": encoding_format} if encoding_format else {}
    result = client.embeddings.create(model="minilm", input=TEXTS, **extra)  # type: ignore[arg-type]
    got = np.asarray([item.embedding for item in result.data], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)  # base64 (the SDK's default) loses nothing
    assert [item.index for item in result.data] == [0, 1, 2]
    assert result.usage.prompt_tokens == result.usage.total_tokens > len(TEXTS) * 2


def test_openai_base64_is_little_endian_float32(client: httpx.Client, expected: np.ndarray) -> None:
    body = {"model": MINILM_ID, "input": "hello world", "encoding_format": "base64"}
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    raw = base64.b64decode(data["data"][0]["embedding"])
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4"), expected[0])
    assert data["object"] == "list" and data["model"] == MINILM_ID
    # "hello world" is [CLS] hello world [SEP] for MiniLM's tokenizer
    assert data["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_langchain_openai_embeddings_equal_api_embed(api: RunningApi, expected: np.ndarray) -> None:
    from langchain_openai import OpenAIEmbeddings

    embedder = OpenAIEmbeddings(
        model="minilm",
        base_url=f"{api.url}/v1",
        api_key="unused",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    got = np.asarray(embedder.embed_documents(TEXTS), dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-7)
    np.testing.assert_allclose(embedder.embed_query(TEXTS[0]), expected[0], atol=1e-7)


def test_ollama_client_embed_equals_api_embed(api: RunningApi, expected: np.ndarray) -> None:
    import ollama

    client = ollama.Client(host=api.url)
    result = client.embed(model="minilm:latest", input=TEXTS)
    np.testing.assert_array_equal(np.asarray(result.embeddings, dtype=np.float32), expected)
    assert result.model == "minilm:latest"
    assert result.prompt_eval_count and result.prompt_eval_count > len(TEXTS)
    assert result.total_duration and result.total_duration > 0
    single = client.embed(model="minilm", input=TEXTS[0])
    np.testing.assert_array_equal(np.asarray(single.embeddings[0], dtype=np.float32), expected[0])
    older = client.embeddings(model="minilm", prompt=TEXTS[1])
    np.testing.assert_array_equal(np.asarray(older.embedding, dtype=np.float32), expected[1])
    names = [m.model for m in client.list().models]
    assert "minilm:latest" in names and "ghost:latest" in names
    assert "hidden:latest" not in names


def test_ollama_library_names_find_the_same_model_by_its_hf_id(
    api: RunningApi, expected: np.ndarray
) -> None:
    """A client still set up for Ollama's `all-minilm` gets MiniLM, enabled here by HF id."""
    import ollama

    client = ollama.Client(host=api.url)
    for name in ("all-minilm", "all-minilm:latest", "all-minilm:l6-v2"):
        result = client.embed(model=name, input=TEXTS)
        np.testing.assert_array_equal(np.asarray(result.embeddings, dtype=np.float32), expected)
    # The 33m tag is MiniLM-L12, which is not enabled: not silently the L6 model.
    with pytest.raises(ollama.ResponseError) as refused:
        client.embed(model="all-minilm:33m", input=TEXTS)
    assert refused.value.status_code == 404


def test_api_embed_answer_keeps_its_fields_and_adds_ollamas(client: httpx.Client) -> None:
    response = client.post("/api/embed", json={"texts": ["hello world"]})
    body = response.json()
    assert {"request_id", "embeddings", "dimensions", "model_used", "processing_time_ms"} <= set(
        body
    )
    assert body["model"] == "minilm" and body["prompt_eval_count"] == 4
    assert body["total_duration"] > 0 and body["load_duration"] >= 0


def test_ollama_version(client: httpx.Client) -> None:
    assert client.get("/api/version").json()["version"]


def test_tei_embed_and_info(client: httpx.Client, expected: np.ndarray, pooled: np.ndarray) -> None:
    response = client.post("/embed", json={"inputs": TEXTS})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json(), dtype=np.float32), expected, atol=1e-6)
    one = client.post("/embed", json={"inputs": TEXTS[0], "normalize": False}).json()
    np.testing.assert_allclose(np.asarray(one, dtype=np.float32), pooled[:1], atol=1e-5)
    info = client.get("/info").json()
    assert info["model_id"] == MINILM_ID
    assert info["model_type"]["reranker"]["model_id"] == "homelab-test/tiny-reranker"


def test_huggingface_inference_client_on_tei_root_route(
    api: RunningApi, expected: np.ndarray, pooled: np.ndarray
) -> None:
    """InferenceClient posts a TEI URL's requests to POST /; `normalize=False` (what Haystack's
    HuggingFaceAPITextEmbedder sends by default) gets TEI's pooled vectors."""
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=api.url)
    got = client.feature_extraction(TEXTS[1])
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected[1:2], atol=1e-6)
    unit = client.feature_extraction(TEXTS[1], normalize=True)
    np.testing.assert_allclose(np.asarray(unit, dtype=np.float32), expected[1:2], atol=1e-6)
    raw = client.feature_extraction(TEXTS, normalize=False)
    np.testing.assert_allclose(np.asarray(raw, dtype=np.float32), pooled, rtol=1e-4, atol=1e-5)


def test_infinity_paths_without_v1(client: httpx.Client, expected: np.ndarray) -> None:
    """Infinity's clients post to {url}/embeddings and list {url}/models."""
    response = client.post("/embeddings", json={"model": "minilm", "input": TEXTS})
    assert response.status_code == 200, response.text
    got = [item["embedding"] for item in response.json()["data"]]
    np.testing.assert_array_equal(np.asarray(got, dtype=np.float32), expected)
    assert client.get("/models").json() == client.get("/v1/models").json()
    refused = client.post("/embeddings", json={"model": "minilm", "input": [[1, 2]]})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_REQUEST"


def test_openai_models_lists_the_enabled_models(client: httpx.Client) -> None:
    listing = client.get("/v1/models").json()
    ids = [m["id"] for m in listing["data"]]
    assert listing["object"] == "list"
    assert {"minilm", "tiny-reranker", "tiny-blip"} <= set(ids) and "hidden" not in ids
    assert client.get(f"/v1/models/{MINILM_ID}").json()["id"] == "minilm"


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"model": "minilm", "input": [[1, 2, 3]]}, 400, "input", "token ids"),
        ({"model": "minilm", "input": [101, 102]}, 400, "input", "token ids"),
        ({"model": "minilm", "input": "hi", "dimensions": 100}, 400, "dimensions", "Matryoshka"),
        ({"model": "nope", "input": "hi"}, 404, "model", "not an enabled"),
        ({"model": "minilm", "input": []}, 400, "input", "empty"),
        ({"input": "hi"}, 400, "model", "Field required"),
    ],
)
def test_openai_errors_have_openais_shape(
    client: httpx.Client, body: dict[str, object], status: int, param: str, words: str
) -> None:
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code", "request_id"}
    assert error["param"] == param and words in error["message"]
    assert error["type"] == ("invalid_request_error")
    assert error["request_id"] == response.headers["x-request-id"]


def test_openai_sdk_raises_its_own_error_types(api: RunningApi) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="nope", input="hi")
    assert "not an enabled" in caught.value.message


def test_dimensions_equal_to_the_native_size_are_fine(client: httpx.Client) -> None:
    body = {"model": "minilm", "input": "hi", "dimensions": 384}
    assert client.post("/v1/embeddings", json=body).status_code == 200


def test_cohere_sdk_embed_v2_and_v1(api: RunningApi, expected: np.ndarray) -> None:
    import cohere

    v2 = cohere.ClientV2(api_key="unused", base_url=api.url)
    result = v2.embed(
        model="minilm",
        texts=TEXTS,
        input_type="search_document",
        embedding_types=["float", "ubinary", "binary"],
    )
    assert result.embeddings.float_ is not None
    np.testing.assert_array_equal(np.asarray(result.embeddings.float_, dtype=np.float32), expected)
    packed = np.packbits(expected > 0, axis=1)  # one bit per dimension, high bit first
    np.testing.assert_array_equal(np.asarray(result.embeddings.ubinary), packed)
    np.testing.assert_array_equal(np.asarray(result.embeddings.binary), packed.astype(int) - 128)
    assert result.texts == TEXTS
    assert result.meta and result.meta.billed_units and result.meta.billed_units.input_tokens
    v1 = cohere.Client(api_key="unused", base_url=api.url)
    floats = v1.embed(model="minilm", texts=TEXTS[:2], input_type="search_query")
    np.testing.assert_array_equal(np.asarray(floats.embeddings, dtype=np.float32), expected[:2])


@pytest.mark.parametrize(
    "body",
    [
        {"model": "minilm", "texts": []},
        {"model": "minilm", "images": ["data:image/png;base64,AAAA"]},
        {"model": "minilm", "texts": ["a"], "embedding_types": ["int8"]},
        {"model": "minilm", "texts": ["a"], "embedding_types": ["floats"]},
        {"model": "minilm", "inputs": [{"content": [{"type": "image_url", "image_url": "x"}]}]},
        {"model": "minilm", "texts": "a"},
    ],
)
def test_cohere_embed_bad_input_is_a_400(client: httpx.Client, body: dict[str, object]) -> None:
    response = client.post("/v2/embed", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    unknown = client.post("/v2/embed", json={"model": "nope", "texts": ["a"]})
    assert unknown.status_code == 404


def test_weaviate_text2vec_transformers_api(api: RunningApi, expected: np.ndarray) -> None:
    """What Weaviate's text2vec-transformers module sends to TRANSFORMERS_INFERENCE_API."""
    with api.client() as http:
        assert http.get("/.well-known/ready").status_code == 204
        assert http.get("/.well-known/live").status_code == 204
        assert http.get("/meta").json()["model"]["_name_or_path"] == MINILM_ID
        for path in ("/vectors", "/vectors/"):
            config = {"pooling_strategy": "masked_mean", "task_type": "passage"}
            response = http.post(path, json={"text": TEXTS[2], "config": config})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["text"] == TEXTS[2] and body["dim"] == expected.shape[1]
            np.testing.assert_array_equal(np.asarray(body["vector"], dtype=np.float32), expected[2])
        refused = http.post("/vectors", json={"text": ["not", "one"]})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_REQUEST"


def test_ollama_ps_lists_the_loaded_embedders(api: RunningApi, client: httpx.Client) -> None:
    import ollama

    assert client.post("/api/embed", json={"texts": ["load it"]}).status_code == 200
    running = ollama.Client(host=api.url).ps()
    names = [m.model for m in running.models]
    assert "minilm:latest" in names
    minilm = running.models[names.index("minilm:latest")]
    assert minilm.size and minilm.size > 10 * 2**20  # the stub's memory, a real process
    assert minilm.expires_at is not None
    status = client.get("/api/status").json()
    loaded = {m["id"] for m in status["models"]}
    assert {name.removesuffix(":latest") for name in names} <= loaded
