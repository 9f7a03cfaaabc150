"""Reranking on a real Triton: scores equal CrossEncoder.predict, in every API shape."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from frontend.models.cache import snapshot_path
from tests.integration.conftest import LIMITS, RunningApi
from tools.build_test_models import TINY_RERANKER

QUERY = "a cat sitting on the table"
DOCUMENTS = [
    "the cat is sitting on a red table",
    "a bus in the street",
    "two dogs and a man in front of a tree",
    "a small white cat",
    "the quick brown fox " * 40,  # past the tiny model's 64 positions: truncated
]


@pytest.fixture(scope="module")
def reference(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """In-process CrossEncoder: (activated scores, raw logits), the ground truth."""
    import torch
    from sentence_transformers import CrossEncoder

    snapshot = snapshot_path(data_dir / "models" / "hub", TINY_RERANKER)
    model = CrossEncoder(str(snapshot), device="cpu")
    pairs = [(QUERY, d) for d in DOCUMENTS]
    logits = model.predict(pairs, activation_fn=torch.nn.Identity())
    return np.asarray(model.predict(pairs)), np.asarray(logits)


def by_index(results: list[dict[str, object]], key: str = "relevance_score") -> np.ndarray:
    scores = np.zeros(len(results))
    for item in results:
        scores[int(item["index"])] = float(item[key])  # type: ignore[arg-type]
    return scores


@pytest.mark.parametrize("model", ["tiny-reranker", "tiny-reranker-torch", TINY_RERANKER])
@pytest.mark.parametrize("raw", [False, True])
def test_scores_equal_cross_encoder(
    client: httpx.Client, reference: tuple[np.ndarray, np.ndarray], model: str, raw: bool
) -> None:
    body = {"query": QUERY, "documents": DOCUMENTS, "model": model, "raw_scores": raw}
    response = client.post("/api/rerank", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    np.testing.assert_allclose(by_index(data["results"]), reference[1 if raw else 0], atol=2e-5)
    scores = [r["relevance_score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert data["model_used"] in ("tiny-reranker", "tiny-reranker-torch")
    assert data["usage"]["total_tokens"] > len(DOCUMENTS)
    assert "document" not in data["results"][0]


def test_top_n_and_documents_returned(client: httpx.Client, reference: tuple) -> None:
    body = {"query": QUERY, "documents": DOCUMENTS, "top_n": 2, "return_documents": True}
    results = client.post("/api/rerank", json=body).json()["results"]
    best = list(np.argsort(-reference[0], kind="stable")[:2])
    assert [r["index"] for r in results] == best
    assert [r["document"] for r in results] == [DOCUMENTS[i] for i in best]


def test_truncate_false_refuses_a_pair_longer_than_the_model_reads(client: httpx.Client) -> None:
    body = {"query": QUERY, "documents": DOCUMENTS, "truncate": False}
    response = client.post("/api/rerank", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "documents[4]" in error["message"] and error["code"] == "INVALID_REQUEST"
    ok = client.post("/api/rerank", json={**body, "documents": DOCUMENTS[:4]})
    assert ok.status_code == 200


def test_cohere_client_v2(api: RunningApi, reference: tuple) -> None:
    import cohere

    client = cohere.ClientV2(api_key="unused", base_url=api.url)
    result = client.rerank(model="tiny-reranker", query=QUERY, documents=DOCUMENTS, top_n=3)
    assert [r.index for r in result.results] == list(np.argsort(-reference[0])[:3])
    for item in result.results:
        assert item.relevance_score == pytest.approx(reference[0][item.index], abs=2e-5)


def test_jina_shaped_v1_returns_documents(client: httpx.Client, reference: tuple) -> None:
    docs = [{"text": d} for d in DOCUMENTS]
    body = {"model": "tiny-reranker", "query": QUERY, "documents": docs}
    data = client.post("/v1/rerank", json=body).json()
    assert data["model"] == "tiny-reranker" and data["usage"]["total_tokens"] > 0
    assert data["results"][0]["document"] == {"text": DOCUMENTS[data["results"][0]["index"]]}
    np.testing.assert_allclose(by_index(data["results"]), reference[0], atol=2e-5)


def test_tei_rerank(client: httpx.Client, reference: tuple) -> None:
    body = {"query": QUERY, "texts": DOCUMENTS[:4], "raw_scores": True, "return_text": True}
    data = client.post("/rerank", json=body).json()
    np.testing.assert_allclose(by_index(data, "score"), reference[1][:4], atol=2e-5)
    assert data[0]["text"] == DOCUMENTS[data[0]["index"]]
    # TEI's default: over-long pairs are refused unless truncate is true
    assert client.post("/rerank", json={"query": QUERY, "texts": DOCUMENTS}).status_code == 400
    body = {"query": QUERY, "texts": DOCUMENTS, "truncate": True}
    assert client.post("/rerank", json=body).status_code == 200


def test_tei_root_route_reranks_and_embeds(client: httpx.Client, reference: tuple) -> None:
    body = {"query": QUERY, "texts": DOCUMENTS[:4]}
    ranked = client.post("/", json=body)
    assert ranked.status_code == 200, ranked.text
    assert ranked.json() == client.post("/rerank", json=body).json()
    np.testing.assert_allclose(by_index(ranked.json(), "score"), reference[0][:4], atol=2e-5)
    embedded = client.post("/", json={"inputs": ["a small white cat"]})
    assert embedded.json() == client.post("/embed", json={"inputs": ["a small white cat"]}).json()


def test_rerank_path_takes_infinitys_body_and_answers_as_infinity(
    client: httpx.Client, reference: tuple
) -> None:
    """What Infinity's clients (LiteLLM's `infinity/` models) send to /rerank and read back."""
    body = {"model": "tiny-reranker", "query": QUERY, "documents": DOCUMENTS, "top_n": 2}
    data = client.post("/rerank", json=body).json()
    assert data["object"] == "rerank" and data["model"] == "tiny-reranker"
    assert data["usage"]["prompt_tokens"] == data["usage"]["total_tokens"] > 0
    assert [r["index"] for r in data["results"]] == list(np.argsort(-reference[0])[:2])
    assert all("document" not in r for r in data["results"])  # Infinity's default
    for item in data["results"]:
        assert item["relevance_score"] == pytest.approx(reference[0][item["index"]], abs=2e-5)
    with_docs = client.post("/", json={**body, "return_documents": True}).json()
    first = with_docs["results"][0]
    assert first["document"] == DOCUMENTS[first["index"]]  # the text itself, as Infinity


TOO_MANY = ["doc"] * (int(LIMITS["max_rerank_documents"]) + 1)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/rerank", {"query": QUERY, "documents": []}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": " ", "documents": ["a"]}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": QUERY, "documents": TOO_MANY}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": QUERY, "documents": [1, 2]}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": QUERY, "documents": "one"}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": 3, "documents": ["a"]}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": QUERY, "documents": ["a"], "top_n": 0}, 400, "INVALID_REQUEST"),
        ("/api/rerank", {"query": QUERY, "documents": ["a"], "model": "minilm"}, 404, None),
        ("/api/rerank", {"query": QUERY, "documents": ["a"], "model": "nope"}, 404, None),
        ("/v2/rerank", {"query": QUERY, "documents": [], "model": "x"}, 400, "INVALID_REQUEST"),
        ("/v2/rerank", {"query": QUERY, "documents": ["a"], "model": "nope"}, 404, None),
        ("/v1/rerank", {"query": QUERY, "documents": [], "model": "x"}, 400, "invalid_request"),
        ("/v1/rerank", {"query": QUERY, "documents": ["a"], "model": "nope"}, 404, None),
        ("/rerank", {"query": QUERY, "texts": [{"x": 1}]}, 400, "INVALID_REQUEST"),
        ("/rerank", {"query": QUERY, "documents": [], "model": "x"}, 400, "INVALID_REQUEST"),
        ("/rerank", {"query": QUERY, "documents": ["a"], "model": "nope"}, 404, None),
        ("/rerank", {"query": QUERY}, 400, "INVALID_REQUEST"),
        ("/", {"query": QUERY, "texts": "a"}, 400, "INVALID_REQUEST"),
        ("/", {"inputs": 5}, 400, "INVALID_REQUEST"),
        ("/", [], 400, "INVALID_REQUEST"),
    ],
)
def test_bad_input_gets_the_envelope(
    client: httpx.Client, path: str, body: dict[str, object], status: int, code: str | None
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    # errors under /v1/ have OpenAI's shape (lower-case codes), the others our envelope
    expected = code or ("model_not_found" if path.startswith("/v1/") else "MODEL_NOT_FOUND")
    assert error["code"] == expected
    assert error["request_id"] == response.headers["x-request-id"]
