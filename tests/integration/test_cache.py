"""The result cache on the real service (memory://): hits, partial requests that compute only
the new texts, Cache-Control, every embedding route sharing entries, images, a new model
revision, metrics and status. Frontends of their own (the session API runs with the cache off)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from frontend.core.config import CacheSection, ModelsSection, Settings
from frontend.models.cache import import_model, repo_dir
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.images import b64, encode, render_text
from tests.integration.fixtures import RunningApi
from tests.pdfs import image_pdf

REVISION_MODEL = "homelab-test/minilm-revisions"  # a copy of MiniLM this module re-imports


def fresh(count: int) -> list[str]:
    """Texts no other test (or run) embedded: a miss is a miss."""
    tag = uuid.uuid4().hex[:8]
    return [f"cache test {tag} sentence {i}" for i in range(count)]


def inferences(triton: EmbeddedTriton, model: str) -> int:
    """Inputs Triton has run through `model` (a batch of n counts n), once the count settles:
    the Python backend reports an execution's statistics just after its responses go out."""

    def count() -> int:
        url = f"http://{triton.http_url}/v2/models/{model}/stats"
        stats = httpx.get(url, timeout=10).json()
        return sum(int(s["inference_count"]) for s in stats["model_stats"])

    value, deadline = count(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.25)
        latest = count()
        if latest == value:
            return value
        value = latest
    return value


def embed(client: httpx.Client, texts: list[str], **headers: str) -> httpx.Response:
    response = client.post("/api/embed", json={"texts": texts}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def vectors(response: httpx.Response) -> np.ndarray:
    return np.array(response.json()["embeddings"], dtype=np.float32)


@pytest.fixture(scope="module")
def cached_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    with own_frontend(settings, triton, cache=CacheSection()) as api:
        yield api


@pytest.fixture
def cached(cached_api: RunningApi) -> Iterator[httpx.Client]:
    with cached_api.client() as http:
        yield http


def test_a_repeated_embed_is_a_hit_with_the_same_vectors_and_no_inference(
    cached: httpx.Client, client: httpx.Client, triton: EmbeddedTriton
) -> None:
    texts = fresh(3)
    first = embed(cached, texts)
    assert first.headers["X-Cache"] == "miss"
    before = inferences(triton, "minilm")
    second = embed(cached, texts)
    assert second.headers["X-Cache"] == "hit"
    assert inferences(triton, "minilm") == before
    assert second.json()["embeddings"] == first.json()["embeddings"]
    assert second.json()["prompt_eval_count"] == first.json()["prompt_eval_count"] > 0
    # The session API has the cache off: no header, and the same vectors from the model.
    uncached = embed(client, texts)
    assert "X-Cache" not in uncached.headers
    np.testing.assert_allclose(vectors(uncached), vectors(second), atol=1e-5)


def test_a_partial_request_computes_only_the_new_texts_in_order(
    cached: httpx.Client, client: httpx.Client, triton: EmbeddedTriton
) -> None:
    old = fresh(2)
    new = fresh(3)
    embed(cached, old)
    before = inferences(triton, "minilm")
    mixed = [new[0], old[0], new[1], old[1], new[2]]
    response = embed(cached, mixed)
    assert response.headers["X-Cache"] == "partial"
    assert inferences(triton, "minilm") == before + 3
    np.testing.assert_allclose(vectors(response), vectors(embed(client, mixed)), atol=1e-5)


def test_no_cache_recomputes_and_no_store_keeps_nothing(
    cached: httpx.Client, triton: EmbeddedTriton
) -> None:
    texts = fresh(2)
    embed(cached, texts)
    before = inferences(triton, "minilm")
    bypass = embed(cached, texts, **{"Cache-Control": "no-cache"})
    assert bypass.headers["X-Cache"] == "bypass"
    assert inferences(triton, "minilm") == before + 2
    unstored = fresh(1)
    assert embed(cached, unstored, **{"Cache-Control": "no-store"}).headers["X-Cache"] == "bypass"
    assert embed(cached, unstored).headers["X-Cache"] == "miss"


def test_every_embedding_route_shares_the_cache(cached: httpx.Client) -> None:
    texts = fresh(2)
    ours = vectors(embed(cached, texts))
    openai = cached.post("/v1/embeddings", json={"input": texts, "model": "minilm"})
    assert openai.status_code == 200 and openai.headers["X-Cache"] == "hit"
    got = np.array([item["embedding"] for item in openai.json()["data"]], dtype=np.float32)
    np.testing.assert_array_equal(got, ours)
    ollama = cached.post("/api/embeddings", json={"model": "minilm", "prompt": texts[0]})
    assert ollama.status_code == 200 and ollama.headers["X-Cache"] == "hit"
    # TEI normalizes after the cache; the vectors are already unit length.
    tei = cached.post("/embed", json={"inputs": texts[1]})
    assert tei.status_code == 200 and tei.headers["X-Cache"] == "hit"
    np.testing.assert_allclose(np.array(tei.json()[0]), ours[1], atol=1e-6)


def test_tei_pooled_vectors_are_cached_apart(cached: httpx.Client) -> None:
    """`normalize: false` (the vector before the model's Normalize module) has entries of its
    own: neither answer is served from the other's."""
    texts = fresh(2)

    def tei(normalize: bool) -> httpx.Response:
        response = cached.post("/embed", json={"inputs": texts, "normalize": normalize})
        assert response.status_code == 200, response.text
        return response

    unit = tei(True)
    raw = tei(False)
    assert unit.headers["X-Cache"] == raw.headers["X-Cache"] == "miss"
    unit_vectors, raw_vectors = np.array(unit.json()), np.array(raw.json())
    assert np.abs(np.linalg.norm(raw_vectors, axis=1) - 1).min() > 0.1
    direction = raw_vectors / np.linalg.norm(raw_vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(direction, unit_vectors, atol=1e-5)
    assert tei(False).headers["X-Cache"] == tei(True).headers["X-Cache"] == "hit"
    assert tei(False).json() == raw.json()


def test_ocr_and_captions_hit_per_image(cached: httpx.Client, triton: EmbeddedTriton) -> None:
    image = render_text([f"Cache {uuid.uuid4().hex[:4]}"])
    body: dict[str, Any] = {"image": b64(encode(image))}
    first = cached.post("/api/ocr", json=body)
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    before = inferences(triton, "rapidocr")
    second = cached.post("/api/ocr", json=body)
    assert second.headers["X-Cache"] == "hit" and inferences(triton, "rapidocr") == before
    assert second.json()["lines"] == first.json()["lines"]
    # Captions: per image in a batch, and the options are part of the key.
    other = b64(encode(render_text(["another"])))
    caption = cached.post("/api/caption", json=body)
    assert caption.headers["X-Cache"] == "miss"
    batch = cached.post("/api/caption", json={"batch": [body["image"], other]})
    assert batch.status_code == 200 and batch.headers["X-Cache"] == "partial"
    assert batch.json()["captions"][0] == caption.json()["caption"]
    beams = cached.post("/api/caption", json={**body, "num_beams": 2})
    assert beams.status_code == 200 and beams.headers["X-Cache"] == "miss"


def test_scanned_pdf_pages_are_cached_per_page(
    cached: httpx.Client, triton: EmbeddedTriton
) -> None:
    pages = [render_text([f"Folio {uuid.uuid4().hex[:4]}"]) for _ in range(2)]
    first = cached.post("/api/ocr", json={"image": b64(image_pdf(pages[:1])), "dpi": 72})
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    before = inferences(triton, "rapidocr")
    both = cached.post("/api/ocr", json={"image": b64(image_pdf(pages)), "dpi": 72})
    assert both.status_code == 200 and both.headers["X-Cache"] == "partial"
    assert inferences(triton, "rapidocr") == before + 1  # only the new page was read
    assert both.json()["pages"][0]["lines"] == first.json()["pages"][0]["lines"]


def test_metrics_and_status_count_inputs(cached: httpx.Client) -> None:
    texts = fresh(2)
    embed(cached, texts)
    embed(cached, texts)
    metrics = cached.get("/metrics").text
    assert 'cache_hits_total{endpoint="/api/embed"}' in metrics
    assert 'cache_misses_total{endpoint="/api/embed"}' in metrics
    stats = cached.get("/api/status").json()["cache"]
    assert stats["enabled"] is True and stats["backend"] == "memory"
    assert stats["hits"] >= 2 and stats["misses"] >= 2
    assert 0 < stats["hit_rate"] < 1
    assert stats["entries"] >= 2 and 0 < stats["bytes"] <= stats["max_bytes"]


def test_errors_carry_no_x_cache(cached: httpx.Client) -> None:
    response = cached.post("/api/embed", json={"texts": [" "]})
    assert response.status_code == 400 and "X-Cache" not in response.headers


def test_disabled_cache_sends_no_header_and_status_says_so(client: httpx.Client) -> None:
    response = embed(client, ["the cache is off here"])
    assert "X-Cache" not in response.headers
    assert client.get("/api/status").json()["cache"] == {"enabled": False}


def test_a_new_model_revision_is_a_miss_once_loaded(
    settings: Settings, triton: EmbeddedTriton, minilm_source: Path, tmp_path: Path
) -> None:
    hub = settings.models_dir / "hub"
    first = import_model(minilm_source, REVISION_MODEL, hub)
    entry = {"id": "minilm-revisions", "hf_model": REVISION_MODEL, "max_batch_size": 8}
    configured = settings.models.model_dump()
    models = ModelsSection.model_validate(
        {**configured, "text_embedding": [*configured["text_embedding"], entry]}
    )
    texts = fresh(2)
    body = {"texts": texts, "model": "minilm-revisions"}
    with (
        own_frontend(settings, triton, cache=CacheSection(), models=models) as api,
        api.client() as http,
    ):
        try:
            assert http.post("/api/embed", json=body).headers["X-Cache"] == "miss"
            assert http.post("/api/embed", json=body).headers["X-Cache"] == "hit"
            # A re-download with other files: a new revision on disk.
            source = tmp_path / "model"
            shutil.copytree(minilm_source, source)
            (source / "NOTICE.txt").write_text("revision two\n")
            second = import_model(source, REVISION_MODEL, hub)
            assert second.revision != first.revision
            # The loaded model is still the old revision: its results still hold.
            assert http.post("/api/embed", json=body).headers["X-Cache"] == "hit"
            unload = http.post("/api/models/minilm-revisions/unload")
            assert unload.status_code == 200, unload.text
            again = http.post("/api/embed", json=body)
            assert again.status_code == 200 and again.headers["X-Cache"] == "miss"
            assert http.post("/api/embed", json=body).headers["X-Cache"] == "hit"
            assert api.app.state.registry.revisions["minilm-revisions"] == second.revision
        finally:
            http.post("/api/models/minilm-revisions/unload")
            shutil.rmtree(repo_dir(hub, REVISION_MODEL), ignore_errors=True)
            # the shared Triton's repository: later tests list its models
            shutil.rmtree(settings.triton_repository_dir / "minilm-revisions", ignore_errors=True)


def test_rerank_caches_each_query_document_pair(cached: httpx.Client, client: httpx.Client) -> None:
    query = f"which text is about cats {uuid.uuid4().hex[:6]}"
    documents = ["cats purr and sleep all day", "the stock market fell", "a kitten is a cat"]
    body = {"query": query, "documents": documents[:2], "raw_scores": True}
    first = cached.post("/api/rerank", json=body)
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    more = cached.post("/api/rerank", json={**body, "documents": documents})
    assert more.headers["X-Cache"] == "partial"
    cohere = cached.post("/v2/rerank", json={"query": query, "documents": documents})
    assert cohere.status_code == 200 and cohere.headers["X-Cache"] == "hit"
    uncached = client.post("/api/rerank", json={**body, "documents": documents}).json()
    assert [r["index"] for r in more.json()["results"]] == [r["index"] for r in uncached["results"]]
    np.testing.assert_allclose(
        [r["relevance_score"] for r in more.json()["results"]],
        [r["relevance_score"] for r in uncached["results"]],
        atol=1e-5,
    )
    assert more.json()["usage"] == uncached["usage"]
    # truncate: false is checked against the cached pairs too (these fit).
    strict = cached.post("/api/rerank", json={**body, "truncate": False})
    assert strict.status_code == 200 and strict.headers["X-Cache"] == "hit"


def test_tei_embed_without_inputs_is_a_400(cached: httpx.Client) -> None:
    response = cached.post("/embed", json={"inputs": []})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
