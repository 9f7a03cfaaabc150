"""A task's default model chosen at runtime (PATCH or POST /api/models with `default: true`),
on the real Triton: every route without a model uses it, a restart keeps it, and deleting it
goes back to config.yaml's default."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from frontend.core.config import Settings, Task
from frontend.models.cache import snapshot_path
from frontend.models.catalog import ModelCatalog
from frontend.models.store import SettingsStore
from tests.fake_hub import FakeHub
from tests.integration.conftest import RunningApi
from tools.build_test_models import TINY_RERANKER

HUB_RERANKER = "acme/tiny-ranker"  # the tiny reranker again, served by the fake hub


def defaults(client: httpx.Client, task: str) -> list[str]:
    response = client.get(f"/api/models/{task}")
    assert response.status_code == 200, response.text
    return [m["config_id"] for m in response.json()["models"] if m["default"]]


def requests_served(api: RunningApi) -> Callable[[str], int]:
    usage = api.app.state.registry.usage
    return lambda model_id: usage[model_id].requests if model_id in usage else 0


def stored_default(settings: Settings, task: Task) -> str | None:
    """What a restarted frontend reads (a fresh store and catalog on the same settings.db)."""
    store = SettingsStore(settings.data_dir / "settings.db")
    try:
        found = ModelCatalog(settings, store).default(task)
        return found.entry.id if found is not None else None
    finally:
        store.close()


@pytest.fixture
def clean_defaults(api: RunningApi) -> Iterator[None]:
    """The session frontend is shared: every test leaves config.yaml's defaults in force."""
    yield
    for task in Task:
        api.app.state.registry.catalog.set_default(task, None)


EMBED_ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/api/embed", {"texts": ["runtime default one"]}),
    ("/embed", {"inputs": "runtime default two"}),  # TEI
    ("/", {"inputs": "runtime default three"}),  # TEI's root route
    ("/vectors", {"text": "runtime default four"}),  # Weaviate
    ("/v2/embed", {"texts": ["runtime default five"], "input_type": "search_document"}),
]
RERANK_ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/api/rerank", {"query": "q", "documents": ["a", "b"]}),
    ("/rerank", {"query": "q", "texts": ["a", "b"]}),  # TEI
    ("/rerank", {"query": "q", "documents": ["a", "b"]}),  # Infinity's body on TEI's route
    ("/", {"query": "q", "texts": ["a", "b"]}),  # TEI's root route
    ("/v2/rerank", {"query": "q", "documents": ["a", "b"]}),  # Cohere
]


def post_all(client: httpx.Client, routes: list[tuple[str, dict[str, Any]]]) -> None:
    for path, body in routes:
        response = client.post(path, json=body)
        assert response.status_code == 200, f"{path}: {response.text[:300]}"


def test_a_configured_model_made_default_serves_every_route_without_a_model(
    api: RunningApi, client: httpx.Client, settings: Settings, clean_defaults: None
) -> None:
    served = requests_served(api)
    assert defaults(client, "embedding") == ["minilm"]
    changed = client.patch("/api/models/minilm-brief", json={"default": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["default"] is True
    assert defaults(client, "embedding") == ["minilm-brief"]  # exactly one per task
    assert stored_default(settings, Task.TEXT_EMBEDDING) == "minilm-brief"
    assert client.get("/meta").json()["model"]["model_id"] == "minilm-brief"  # Weaviate

    before = served("minilm-brief"), served("minilm")
    post_all(client, EMBED_ROUTES)
    assert served("minilm-brief") == before[0] + len(EMBED_ROUTES)
    assert served("minilm") == before[1]
    # a model named in the request still wins
    assert (
        client.post("/api/embed", json={"texts": ["named"], "model": "minilm"}).status_code == 200
    )
    assert served("minilm") == before[1] + 1

    # false on a model that is not the default changes nothing
    assert client.patch("/api/models/minilm", json={"default": False}).status_code == 200
    assert defaults(client, "embedding") == ["minilm-brief"]
    # false on the runtime default: config.yaml's default again
    reset = client.patch("/api/models/minilm-brief", json={"default": False})
    assert reset.status_code == 200 and reset.json()["default"] is False
    assert defaults(client, "embedding") == ["minilm"]
    assert stored_default(settings, Task.TEXT_EMBEDDING) == "minilm"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/models/minilm", {"default": False}, 400),  # config.yaml's own default
        ("/api/models/hidden", {"default": True}, 400),  # disabled in config.yaml
        ("/api/models/nobody-here", {"default": True}, 404),
        ("/api/models/minilm-brief", {"default": "yes"}, 400),
    ],
)
def test_default_refusals(
    client: httpx.Client, clean_defaults: None, path: str, body: dict[str, Any], status: int
) -> None:
    response = client.patch(path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("INVALID_REQUEST", "MODEL_NOT_FOUND")
    assert defaults(client, "embedding") == ["minilm"]


def test_a_model_added_at_runtime_becomes_the_default_until_it_is_deleted(
    api: RunningApi,
    client: httpx.Client,
    settings: Settings,
    fake_hub: FakeHub,
    clean_defaults: None,
) -> None:
    snapshot = snapshot_path(settings.models_dir / "hub", TINY_RERANKER)
    assert snapshot is not None
    fake_hub.add_repo(HUB_RERANKER, snapshot)
    served = requests_served(api)
    try:
        download = client.post("/api/models/download?wait=true", json={"model_id": HUB_RERANKER})
        assert download.status_code == 202 and download.json()["state"] == "done", download.text
        added = client.post(
            "/api/models", json={"task": "rerank", "hf_model": HUB_RERANKER, "default": True}
        )
        assert added.status_code == 201, added.text
        new_id = added.json()["config_id"]
        assert added.json()["default"] is True and added.json()["added_at_runtime"] is True
        assert defaults(client, "rerank") == [new_id]
        assert stored_default(settings, Task.RERANK) == new_id  # a restart keeps it
        listed = {m["config_id"]: m for m in client.get("/api/models").json()["models"]}
        assert listed[new_id]["default"] is True and listed["tiny-reranker"]["default"] is False

        before = served(new_id), served("tiny-reranker")
        post_all(client, RERANK_ROUTES)
        assert served(new_id) == before[0] + len(RERANK_ROUTES)
        assert served("tiny-reranker") == before[1]
        info = client.get("/info").json()  # TEI names the default reranker
        assert info["model_type"]["reranker"]["model_id"] == HUB_RERANKER

        deleted = client.delete(f"/api/models/{HUB_RERANKER}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["removed_config_ids"] == [new_id]
        assert deleted.json()["defaults_restored"] == {"rerank": "tiny-reranker"}
        assert defaults(client, "rerank") == ["tiny-reranker"]
        assert stored_default(settings, Task.RERANK) == "tiny-reranker"
        before_config = served("tiny-reranker")
        post_all(client, RERANK_ROUTES[:2])
        assert served("tiny-reranker") == before_config + 2
    finally:
        if client.get(f"/api/models/{HUB_RERANKER}").status_code == 200:
            client.delete(f"/api/models/{HUB_RERANKER}")
        fake_hub.repos.pop(HUB_RERANKER, None)
