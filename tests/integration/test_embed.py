"""POST /api/embed on a real Triton: correctness, batching, lazy loading and reloads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http

from frontend.triton.embedded import EmbeddedTriton
from tests.conftest import MINILM_ID
from tests.integration.conftest import (
    ADMIN_HEADERS,
    RunningApi,
    concurrent_posts,
    triton_log_count,
)

SENTENCES = [
    "hello world",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "Triton batches requests from many clients into one forward pass.",
    "Ünïcödé, emoji 🚀 and 日本語 text embed too.",
]


@pytest.fixture(scope="module")
def reference(minilm_source: Path) -> np.ndarray:
    """In-process sentence-transformers output for SENTENCES, the ground truth."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_source), device="cpu")
    return np.asarray(model.encode(SENTENCES, convert_to_numpy=True), dtype=np.float32)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def triton_admin(triton: EmbeddedTriton) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(triton.http_url)


def loads_in_log(triton: EmbeddedTriton, model: str) -> int:
    return triton_log_count(triton, f"successfully loaded '{model}'")


def unload_and_wait(triton: EmbeddedTriton, model: str) -> None:
    admin = triton_admin(triton)
    admin.unload_model(model, headers=ADMIN_HEADERS)
    deadline = time.monotonic() + 30
    while admin.is_model_ready(model) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not admin.is_model_ready(model)


def test_embeddings_match_in_process_model(client: httpx.Client, reference: np.ndarray) -> None:
    response = client.post("/api/embed", json={"texts": SENTENCES})
    assert response.status_code == 200, response.text
    body = response.json()
    vectors = np.asarray(body["embeddings"], dtype=np.float32)
    assert vectors.shape == (len(SENTENCES), 384)
    assert body["dimensions"] == 384
    assert body["model_used"] == "minilm"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["processing_time_ms"] >= 0
    assert cosine_rows(vectors, reference).min() >= 0.9999
    # the reference values measured for this model (ARCHITECTURE.md)
    np.testing.assert_allclose(
        vectors[0, :5], [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362], atol=1e-5
    )
    similarity = cosine_rows(vectors[1:2], vectors[2:3])[0]
    assert similarity == pytest.approx(0.7553, abs=1e-3)


@pytest.mark.parametrize("name", ["minilm", MINILM_ID])
def test_model_by_config_id_or_hf_id(client: httpx.Client, name: str) -> None:
    response = client.post("/api/embed", json={"texts": ["hello world"], "model": name})
    assert response.status_code == 200, response.text
    assert response.json()["model_used"] == "minilm"


def test_request_longer_than_a_triton_batch_is_split_in_order(
    client: httpx.Client, reference: np.ndarray
) -> None:
    texts = SENTENCES * 8  # 40 texts, max_batch_size 16 -> three Triton requests
    response = client.post("/api/embed", json={"texts": texts})
    assert response.status_code == 200, response.text
    vectors = np.asarray(response.json()["embeddings"], dtype=np.float32)
    assert vectors.shape == (40, 384)
    assert cosine_rows(vectors, np.tile(reference, (8, 1))).min() >= 0.9999


def test_client_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.post(
        "/api/embed", json={"texts": ["x y z"]}, headers={"X-Request-ID": "my-trace-42"}
    )
    assert response.headers["x-request-id"] == "my-trace-42"
    assert response.json()["request_id"] == "my-trace-42"


def test_concurrent_requests_share_triton_requests(
    api: RunningApi, client: httpx.Client, triton: EmbeddedTriton
) -> None:
    """16 concurrent one-text requests reach Triton as fewer, larger requests (the frontend's
    coalescer), run in fewer executions, and each caller still gets its own vector."""
    alone = [
        client.post("/api/embed", json={"texts": [f"sentence number {i}"]}).json()["embeddings"][0]
        for i in range(16)
    ]
    admin = triton_admin(triton)

    def read() -> tuple[int, int, int]:
        stats = admin.get_inference_statistics("minilm")["model_stats"][0]
        requests = int(stats["inference_stats"]["success"]["count"])
        return requests, int(stats["inference_count"]), int(stats["execution_count"])

    def counts() -> tuple[int, int, int]:
        # The python backend reports an execution's statistics just after its responses go
        # out: read them once they stop changing.
        value = read()
        for _ in range(20):
            time.sleep(0.25)
            latest = read()
            if latest == value:
                break
            value = latest
        return value

    requests_before, texts_before, executions_before = counts()
    bodies: list[dict[str, object]] = [{"texts": [f"sentence number {i}"]} for i in range(16)]
    responses = concurrent_posts(api, bodies)
    assert [r.status_code for r in responses] == [200] * 16
    requests_after, texts_after, executions_after = counts()
    assert texts_after - texts_before == 16
    requests = requests_after - requests_before
    assert requests < 16, f"16 concurrent requests reached Triton as {requests}: none merged"
    executions = executions_after - executions_before
    assert executions < 16, f"16 requests took {executions} executions: no batching"
    together = np.array([r.json()["embeddings"][0] for r in responses], dtype=np.float32)
    np.testing.assert_allclose(together, np.array(alone, dtype=np.float32), atol=1e-5)


def test_concurrent_first_requests_share_one_load(
    api: RunningApi, client: httpx.Client, triton: EmbeddedTriton
) -> None:
    assert client.post("/api/embed", json={"texts": ["make sure it is loaded"]}).status_code == 200
    registry = api.app.state.registry
    unload_and_wait(triton, "minilm")
    registry.forget("minilm")
    loads_before = registry.load_count.get("minilm", 0)
    log_loads_before = loads_in_log(triton, "minilm")

    responses = concurrent_posts(api, [{"texts": [f"first {i}"]} for i in range(8)])

    assert [r.status_code for r in responses] == [200] * 8
    assert registry.load_count["minilm"] - loads_before == 1
    assert loads_in_log(triton, "minilm") - log_loads_before == 1


def test_request_after_unload_reloads_transparently(
    client: httpx.Client, triton: EmbeddedTriton, reference: np.ndarray
) -> None:
    assert client.post("/api/embed", json={"texts": ["loaded"]}).status_code == 200
    # Unloaded behind the frontend's back, as a power user (or a Triton restart) would do.
    unload_and_wait(triton, "minilm")
    log_loads_before = loads_in_log(triton, "minilm")

    response = client.post("/api/embed", json={"texts": SENTENCES[:1]})

    assert response.status_code == 200, response.text
    vector = np.asarray(response.json()["embeddings"], dtype=np.float32)
    assert cosine_rows(vector, reference[:1])[0] >= 0.9999
    assert loads_in_log(triton, "minilm") - log_loads_before == 1


def test_models_are_not_loaded_at_start(api: RunningApi, triton: EmbeddedTriton) -> None:
    index = {
        m["name"]: m for m in triton_admin(triton).get_model_repository_index(headers=ADMIN_HEADERS)
    }
    # Every configured model has an entry, the disabled one none; models that other tests of
    # the run added at runtime (their ids start with "tiny-", "lru-" or "test-") may be there too.
    configured = {
        "minilm",
        "ghost",
        "broken",
        "minilm-brief",
        "tiny-blip",
        "rapidocr",
        "tiny-trocr",
        "tesseract",
        "rapidocr-pinned",
        "lru-rapidocr",
        "lru-trocr",
        "lru-blip",
        "tiny-reranker",
        "tiny-reranker-torch",
        "tiny-llava",
        "tiny-qwen2-vl",
        "tiny-smolvlm",
        "tiny-florence2",
    }
    assert configured <= set(index)
    added = set(index) - configured
    assert all(name.startswith(("tiny-", "lru-", "test-")) for name in added), added
    disabled = [e.id for e in api.app.state.settings.models.text_embedding if not e.enabled]
    assert disabled and not set(disabled) & set(index)
    assert index["ghost"].get("state") != "READY"
    assert api.app.state.embedded_triton is None  # triton.url set: no Triton of its own


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["triton"] is True


def test_openapi_documents_embed(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/embed"]["post"]
    assert {"200", "400", "404", "413", "503"} <= set(operation["responses"])
    assert client.get("/docs").status_code == 200
