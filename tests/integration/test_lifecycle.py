"""Model lifecycle on a real Triton: idle unload, pinning, keep_alive, LRU eviction, status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from frontend.app import create_app
from frontend.core.config import Settings
from frontend.models.stubs import stub_pids
from frontend.triton.embedded import EmbeddedTriton
from tests.images import b64, encode, render_text
from tests.integration.conftest import serve_app

PAGE = b64(encode(render_text(["ok"], size=(120, 60))))


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until `predicate` held; AssertionError after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def loaded(client: httpx.Client) -> dict[str, Any]:
    return {m["id"]: m for m in client.get("/api/status").json()["models"]}


def embed(client: httpx.Client, model: str, **extra: Any) -> None:
    response = client.post("/api/embed", json={"texts": ["hi"], "model": model, **extra})
    assert response.status_code == 200, response.text


def test_idle_model_is_unloaded_and_its_process_ends(
    client: httpx.Client, settings: Settings
) -> None:
    embed(client, "minilm-brief", keep_alive=2)
    repository = settings.triton_repository_dir
    assert stub_pids(repository, "minilm-brief")
    status = loaded(client)["minilm-brief"]
    assert status["memory_bytes"] > 50 * 2**20
    assert 0 < status["expires_in_seconds"] <= 2
    # keep-alive 2 s, then the stub process must be gone (memory released) within 3 s more
    wait_for(lambda: not stub_pids(repository, "minilm-brief"), 2 + 3 + 1)
    assert "minilm-brief" not in loaded(client)


def test_keep_alive_zero_unloads_right_after_the_response(
    client: httpx.Client, settings: Settings
) -> None:
    embed(client, "minilm-brief", keep_alive=600)
    assert stub_pids(settings.triton_repository_dir, "minilm-brief")
    embed(client, "minilm-brief", keep_alive=0)
    took = wait_for(lambda: not stub_pids(settings.triton_repository_dir, "minilm-brief"), 5)
    assert took < 5
    embed(client, "minilm-brief", keep_alive="2s")  # sticky: restore a short keep-alive


def test_pinned_model_stays_loaded(client: httpx.Client, settings: Settings) -> None:
    response = client.post("/api/ocr", json={"image": PAGE, "model": "rapidocr-pinned"})
    assert response.status_code == 200, response.text
    time.sleep(2.0)  # four times its keep-alive
    assert stub_pids(settings.triton_repository_dir, "rapidocr-pinned")
    status = loaded(client)["rapidocr-pinned"]
    assert status["pinned"] is True
    assert status["expires_in_seconds"] is None


@pytest.mark.parametrize("value", ["soon", "5 minutes", [1]])
def test_bad_keep_alive_is_refused(client: httpx.Client, value: object) -> None:
    response = client.post("/api/embed", json={"texts": ["x"], "keep_alive": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


@pytest.fixture
def lru_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[tuple[httpx.Client, Settings]]:
    """A frontend of its own over the shared Triton, with a budget of its own. It uses only
    the lru-* models, which no other test's frontend loads or unloads."""
    own = settings.model_copy(
        deep=True, update={"triton": settings.triton.model_copy(update={"url": triton.grpc_url})}
    )
    app = create_app(own)
    server, thread, url = serve_app(app)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            yield http, app.state.settings
    finally:
        server.should_exit = True
        thread.join(30)


def test_lru_eviction_under_a_memory_budget(lru_api: tuple[httpx.Client, Settings]) -> None:
    client, own = lru_api
    names = ["lru-trocr", "lru-rapidocr", "lru-blip"]
    sizes = {}
    for name in names:  # measure each model's real footprint, one at a time
        assert client.post(f"/api/models/{name}/load").status_code == 200
        sizes[name] = loaded(client)[name]["memory_bytes"]
        assert client.post(f"/api/models/{name}/unload").status_code == 200
    assert all(size > 0 for size in sizes.values())
    pairs = max(sizes[a] + sizes[b] for a in names for b in names if a != b)
    budget = pairs + min(sizes.values()) // 2  # any two fit, all three do not
    own.resources.max_host_memory_gb = budget / 1024**3

    for name in ["lru-trocr", "lru-rapidocr"]:
        assert client.post(f"/api/models/{name}/load").status_code == 200
    ocr = client.post("/api/ocr", json={"image": PAGE, "model": "lru-trocr"})
    assert ocr.status_code == 200  # lru-trocr used last: lru-rapidocr is least recently used
    caption = client.post("/api/caption", json={"image": PAGE, "model": "lru-blip"})
    assert caption.status_code == 200, caption.text

    assert set(loaded(client)) == {"lru-trocr", "lru-blip"}
    assert not stub_pids(own.triton_repository_dir, "lru-rapidocr")
