"""The model management API on a real Triton and a local fake hub: list, get, download with
progress, add, load, delete, runtime settings, and a matrix of hostile ids."""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from frontend.core.config import Settings
from frontend.models.cache import repo_dir
from frontend.models.store import SettingsStore
from frontend.models.stubs import stub_pids
from tests.conftest import MINILM_ID
from tests.fake_hub import FakeHub
from tests.images import encode, render_text
from tests.integration.conftest import HUB_CAPTION_MODEL, RunningApi

REQUIRED = {"id", "task", "downloaded", "loaded", "config_id", "size_on_disk_bytes", "enabled"}
PICTURE = base64.b64encode(encode(render_text(["cat"], size=(64, 64)))).decode()


def models_by_config_id(client: httpx.Client, path: str = "/api/models") -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return {m["config_id"] or m["id"]: m for m in response.json()["models"]}


def test_list_covers_configured_manifest_and_builtin_models(client: httpx.Client) -> None:
    assert client.post("/api/embed", json={"texts": ["hi"], "model": "minilm"}).status_code == 200
    models = models_by_config_id(client)
    for item in models.values():
        assert set(item) >= REQUIRED
    minilm = models["minilm"]
    assert minilm["id"] == MINILM_ID
    assert (minilm["task"], minilm["downloaded"], minilm["loaded"]) == ("embedding", True, True)
    assert minilm["default"] is True and minilm["enabled"] is True
    assert minilm["size_on_disk_bytes"] > 80 * 2**20  # the real weights are 90 MB
    assert minilm["memory_bytes"] > 50 * 2**20
    assert minilm["keep_alive_seconds"] == 30 * 60
    assert 0 < minilm["expires_in_seconds"] <= 30 * 60
    assert models["ghost"]["downloaded"] is False and models["ghost"]["loaded"] is False
    assert models["hidden"]["enabled"] is False
    assert models["rapidocr"]["builtin"] is True and models["rapidocr"]["downloaded"] is True
    assert models["rapidocr"]["keep_alive_seconds"] == 5
    large = models["BAAI/bge-large-en-v1.5"]  # in the manifest only
    assert (large["configured"], large["in_manifest"], large["downloaded"]) == (False, True, False)
    assert large["dimensions"] == 1024 and large["size_mb"] > 1000


@pytest.mark.parametrize(
    ("task", "expected"),
    [("embedding", "embedding"), ("text_embedding", "embedding"), ("caption", "caption")],
)
def test_list_one_task(client: httpx.Client, task: str, expected: str) -> None:
    models = models_by_config_id(client, f"/api/models/{task}")
    assert models and {m["task"] for m in models.values()} == {expected}


def test_get_by_hf_id_and_by_config_id(client: httpx.Client) -> None:
    by_hf = client.get(f"/api/models/{MINILM_ID}")
    by_config = client.get("/api/models/minilm")
    assert by_hf.status_code == by_config.status_code == 200
    assert by_hf.json()["id"] == by_config.json()["id"] == MINILM_ID
    assert isinstance(by_hf.json()["loaded"], bool)
    missing = client.get("/api/models/nobody/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "MODEL_NOT_FOUND"


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/downloads/{job_id}").json()
        seen.append(job)
        if job["state"] in ("done", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"download still {seen[-1]['state']} after {timeout} s")


def test_download_add_use_and_delete_a_model(
    client: httpx.Client, fake_hub: FakeHub, settings: Settings
) -> None:
    hub_dir = settings.models_dir / "hub"
    fake_hub.chunk_delay = 0.004  # slow enough to watch the progress
    try:
        first = client.post("/api/models/download", json={"model_id": HUB_CAPTION_MODEL})
        again = client.post("/api/models/download", json={"id": HUB_CAPTION_MODEL})
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]  # one shared download
        during = client.get(f"/api/models/{HUB_CAPTION_MODEL}").json()
        assert during["downloaded"] is False and during["download"] is not None
        seen = wait_job(client, first.json()["id"])
    finally:
        fake_hub.chunk_delay = 0.0
    final = seen[-1]
    assert final["state"] == "done", final
    assert final["bytes_done"] == final["bytes_total"] > 100_000
    partial = [
        j for j in seen if j["state"] == "running" and 0 < j["bytes_done"] < final["bytes_total"]
    ]
    assert partial, "no progress was observable while the download ran"
    assert all(a["bytes_done"] <= b["bytes_done"] for a, b in itertools.pairwise(seen))
    served = sum(fake_hub.downloads(HUB_CAPTION_MODEL).values())

    # A second request finds it in the cache: done at once, nothing fetched again.
    repeat = client.post("/api/models/download?wait=true", json={"model_id": HUB_CAPTION_MODEL})
    assert repeat.status_code == 202 and repeat.json()["state"] == "done"
    assert sum(fake_hub.downloads(HUB_CAPTION_MODEL).values()) == served
    info = client.get(f"/api/models/{HUB_CAPTION_MODEL}").json()
    assert info["downloaded"] is True and info["configured"] is False
    assert info["size_on_disk_bytes"] >= final["bytes_total"]

    added = client.post("/api/models", json={"task": "caption", "hf_model": HUB_CAPTION_MODEL})
    assert added.status_code == 201, added.text
    config_id = added.json()["config_id"]
    assert config_id == "tiny-caption" and added.json()["added_at_runtime"] is True
    duplicate = client.post("/api/models", json={"task": "caption", "hf_model": HUB_CAPTION_MODEL})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "CONFLICT"
    assert SettingsStore(settings.data_dir / "settings.db").is_added(config_id)

    caption = client.post("/api/caption", json={"image": PICTURE, "model": config_id})
    assert caption.status_code == 200, caption.text
    assert caption.json()["caption"]
    assert stub_pids(settings.triton_repository_dir, config_id)
    assert client.get(f"/api/models/{config_id}").json()["loaded"] is True

    deleted = client.delete(f"/api/models/{HUB_CAPTION_MODEL}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["removed_config_ids"] == [config_id]
    assert deleted.json()["freed_bytes"] >= final["bytes_total"]
    assert not stub_pids(settings.triton_repository_dir, config_id)  # unloaded before deletion
    assert not repo_dir(hub_dir, HUB_CAPTION_MODEL).exists()
    assert not (settings.triton_repository_dir / config_id).exists()
    assert client.get(f"/api/models/{HUB_CAPTION_MODEL}").status_code == 404
    gone = client.post("/api/caption", json={"image": PICTURE, "model": config_id})
    assert gone.status_code == 404
    assert client.delete(f"/api/models/{HUB_CAPTION_MODEL}").status_code == 404
    assert not SettingsStore(settings.data_dir / "settings.db").is_added(config_id)


def test_download_of_an_unknown_repo_fails_with_a_clear_message(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.post("/api/models/download?wait=true", json={"model_id": "acme/missing"})
    assert time.monotonic() - started < 10
    job = response.json()
    assert job["state"] == "failed"
    assert "acme/missing" in job["error"] and "Traceback" not in job["error"]
    assert client.get("/api/models/acme/missing").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"task": "caption", "hf_model": MINILM_ID}, 400, "INVALID_REQUEST"),  # an embedder
        ({"task": "painting", "hf_model": "acme/x"}, 400, "INVALID_REQUEST"),
        ({"task": "caption", "hf_model": "../../etc"}, 400, "INVALID_REQUEST"),
        ({"task": "caption", "hf_model": "acme/x", "id": "caption"}, 400, "INVALID_REQUEST"),
        ({"task": "caption", "hf_model": "acme/x", "id": "bad id!"}, 400, "INVALID_REQUEST"),
        ({"task": "caption", "hf_model": "acme/x", "id": "tiny-blip"}, 409, "CONFLICT"),
        ({"task": "embedding", "hf_model": MINILM_ID}, 409, "CONFLICT"),  # already configured
        ({"task": "caption", "hf_model": "rapidocr/PP-OCRv4"}, 400, "INVALID_REQUEST"),
        ({"task": "caption", "hf_model": "acme/x", "instances": 0}, 400, "INVALID_REQUEST"),
        (
            {"task": "caption", "hf_model": "acme/x", "trust_remote_code": True},
            400,
            "INVALID_REQUEST",
        ),
    ],
)
def test_add_model_refusals(
    client: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    before = models_by_config_id(client).keys()
    response = client.post("/api/models", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert models_by_config_id(client).keys() == before


def test_runtime_keep_alive_and_pinning_are_persisted(
    client: httpx.Client, settings: Settings
) -> None:
    path = "/api/models/minilm-brief"
    try:
        changed = client.patch(path, json={"keep_alive_seconds": 600, "pinned": True})
        assert changed.status_code == 200, changed.text
        assert changed.json()["pinned"] is True
        assert changed.json()["keep_alive_seconds"] is None  # pinned: never unloaded
        unpinned = client.patch(path, json={"pinned": False}).json()
        assert (unpinned["pinned"], unpinned["keep_alive_seconds"]) == (False, 600)
        forever = client.patch(path, json={"keep_alive_seconds": -1}).json()
        assert forever["keep_alive_seconds"] is None
        store = SettingsStore(settings.data_dir / "settings.db")  # what a restart reads
        assert store.override("minilm-brief").keep_alive_seconds == -1
        assert store.override("minilm-brief").pinned is False
        too_long = client.patch(path, json={"keep_alive_seconds": 10**9})
        assert too_long.status_code == 400
        assert client.patch("/api/models/nope", json={"pinned": True}).status_code == 404
        assert client.patch(path, json={"colour": "red"}).status_code == 400
    finally:
        reset = client.patch(path, json={"keep_alive_seconds": None, "pinned": None})
    assert reset.json()["keep_alive_seconds"] == 2 and reset.json()["pinned"] is False
    assert SettingsStore(settings.data_dir / "settings.db").override("minilm-brief").pinned is None


# -- hostile ids ---------------------------------------------------------------------------------

HOSTILE = [
    ("/api/models/../../etc/passwd", 400),
    ("/api/models/..%2F..%2Fetc%2Fpasswd", 400),
    ("/api/models/%2e%2e/%2e%2e/outside", 400),
    ("/api/models//etc/passwd", 400),
    ("/api/models/%2Fetc%2Fpasswd", 400),
    ("/api/models/org/name%2F..", 400),
    ("/api/models/org/../../..", 400),
    ("/api/models/a/b/c", 400),
    ("/api/models/.hidden/x", 400),
    ("/api/models/org/.", 400),
    ("/api/models/~root/x", 400),
    ("/api/models/C:%5Cwindows", 400),
    ("/api/models/a%00b/c", 400),
    ("/api/models/" + "x" * 300, 400),
    ("/api/models/models--evil--link", 404),  # a valid config id nobody configured
    ("/api/models/evil/link", 404),  # a symlinked cache folder is not a model
    ("/api/models/nobody/never-heard-of", 404),
    ("/api/models/outside/secret", 404),
]


def raw_request(url: str, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """Send `path` byte for byte (httpx would normalise the dot segments away)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def tree(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): (p.lstat().st_size if not p.is_dir() else -1)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def trap(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """Files outside the cache that a path trick would reach, and a symlink pointing there."""
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "keep.txt").write_text("precious")
    hub = settings.models_dir / "hub"
    link = hub / "models--evil--link"
    link.symlink_to(outside, target_is_directory=True)
    (settings.data_dir / "precious.txt").write_text("precious")
    yield outside
    link.unlink()
    (settings.data_dir / "precious.txt").unlink()


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(("path", "status"), HOSTILE)
def test_hostile_ids_touch_nothing(
    api: RunningApi, settings: Settings, trap: Path, method: str, path: str, status: int
) -> None:
    hub = settings.models_dir / "hub"
    before = (tree(hub), tree(trap))
    code, body = raw_request(api.url, method, path)
    assert code == status, body
    assert body["error"]["code"] == ("INVALID_REQUEST" if status == 400 else "MODEL_NOT_FOUND")
    assert "Traceback" not in str(body) and str(hub) not in str(body)
    assert (tree(hub), tree(trap)) == before
    assert (trap / "secret" / "keep.txt").read_text() == "precious"
    assert (settings.data_dir / "precious.txt").read_text() == "precious"
