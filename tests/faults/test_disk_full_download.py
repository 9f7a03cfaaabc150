"""The disk filling during a model download: a small tmpfs is a frontend's whole data dir (its
settings, Triton entries and Hugging Face cache, with MiniLM already in it), and models come from
a loopback fake hub. A download that cannot fit, or that runs out of space half-way, fails its job
with a message about disk space; nothing of it stays visible or on disk; MiniLM keeps serving."""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend.core.config import Settings
from frontend.models.cache import import_model, repo_dir
from frontend.triton.embedded import EmbeddedTriton
from tests.conftest import MINILM_ID
from tests.fake_hub import FakeHub
from tests.faults.conftest import own_frontend, wait_until
from tests.integration.fixtures import RunningApi

TMPFS_MB = 256  # MiniLM takes 88 MB of it
TOO_BIG = "acme/too-big"  # larger than all the free space
TOO_BIG_MB = 180
FILLING = "acme/filling"  # fits at the start; the disk fills while it downloads
# huggingface_hub writes in 10 MB chunks: the disk fills after the first one.
FILLING_MB = 40
EMBED = {"texts": ["models that are loaded keep serving"], "model": "minilm"}


@dataclass
class DiskFullCase:
    api: RunningApi
    hub: FakeHub
    hub_dir: Path
    mount: Path


def model_folder(root: Path, name: str, weights_mb: int) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(f'{{"model_type": "bert", "name": "{name}"}}')
    # Distinct contents per model (the fake hub finds blobs by sha256).
    block = (name.encode() * (1 << 20))[: 1 << 20]
    (folder / "model.safetensors").write_bytes(block * weights_mb)
    return folder


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        unmounted = subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if unmounted.returncode != 0:  # something still holds a file: detach it anyway
            subprocess.run(["umount", "--lazy", str(mount)], check=False)
        assert not mount.is_mount()


@pytest.fixture
def disk_full_case(
    tmpfs: Path,
    tmp_path: Path,
    settings: Settings,
    triton: EmbeddedTriton,
    minilm_source: Path,
) -> Iterator[DiskFullCase]:
    hub_dir = tmpfs / "models" / "hub"
    import_model(minilm_source, MINILM_ID, hub_dir)
    folders = tmp_path / "hub-repos"
    folders.mkdir()
    repos = {
        TOO_BIG: model_folder(folders, "too-big", TOO_BIG_MB),
        FILLING: model_folder(folders, "filling", FILLING_MB),
    }
    with (
        FakeHub(repos) as hub,
        own_frontend(
            settings,
            triton,
            data_dir=tmpfs,
            hub=settings.hub.model_copy(update={"endpoint": hub.url}),
        ) as api,
    ):
        yield DiskFullCase(api, hub, hub_dir, tmpfs)


def fill_disk(path: Path) -> int:
    """Write zeros until the file system is full; the bytes written (bounded by its size)."""
    written = 0
    block = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as filler:
        for _ in range(TMPFS_MB + 1):
            try:
                written += filler.write(block) or 0
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return written


def partial_bytes(hub_dir: Path) -> int:
    """Bytes of the files being downloaded now (huggingface_hub's *.incomplete, in staging)."""
    total = 0
    for path in hub_dir.glob(".download-*/**/*.incomplete"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/downloads/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def assert_nothing_of(case: DiskFullCase, client: httpx.Client, model_id: str) -> None:
    """No model, no half snapshot, no staging or temporary file left by the download."""
    assert not repo_dir(case.hub_dir, model_id).exists()
    leftovers = [p.name for p in case.hub_dir.iterdir() if not p.name.startswith("models--")]
    assert leftovers == []
    listed = client.get("/api/models").json()["models"]
    assert model_id not in {m["id"] for m in listed}
    missing = client.get(f"/api/models/{model_id}")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "MODEL_NOT_FOUND"


def assert_minilm_serves(client: httpx.Client) -> None:
    response = client.post("/api/embed", json=EMBED)
    assert response.status_code == 200, response.text
    assert response.json()["dimensions"] == 384


def test_download_larger_than_the_free_space_fails_at_once_and_leaves_nothing(
    disk_full_case: DiskFullCase,
) -> None:
    case = disk_full_case
    with case.api.client() as client:
        assert_minilm_serves(client)
        response = client.post("/api/models/download?wait=true", json={"model_id": TOO_BIG})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["state"] == "failed"
        assert "not enough disk space" in job["error"]
        assert job["bytes_total"] > shutil.disk_usage(case.mount).free
        assert (job["files_done"], job["bytes_done"]) == (0, 0)
        assert job_of(client, job["id"]) == job
        assert case.hub.downloads(TOO_BIG) == {}  # refused before any file was fetched
        assert_nothing_of(case, client, TOO_BIG)
        assert_minilm_serves(client)


def test_disk_filling_mid_download_fails_the_job_cleanly_and_other_models_keep_serving(
    disk_full_case: DiskFullCase,
) -> None:
    case = disk_full_case
    case.hub.chunk_size, case.hub.chunk_delay = 64 << 10, 0.01  # the 40 MB take ~6 s
    filler = case.mount / "filler"
    with case.api.client() as client:
        assert_minilm_serves(client)
        used_before = shutil.disk_usage(case.mount).used
        started = client.post("/api/models/download", json={"model_id": FILLING})
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        # huggingface_hub writes and reports 10 MB at a time: watch the first land in staging.
        assert wait_until(lambda: partial_bytes(case.hub_dir) >= 10 << 20, 15)
        assert job_of(client, job_id)["state"] == "running"
        filled = fill_disk(filler)
        assert shutil.disk_usage(case.mount).free < 1 << 20
        began = time.monotonic()
        assert wait_until(lambda: job_of(client, job_id)["state"] != "running", 15)
        job = job_of(client, job_id)
        assert job["state"] == "failed", job
        assert "disk space" in job["error"] and "model.safetensors" in job["error"], job["error"]
        assert str(case.mount) not in job["error"]  # no local paths
        assert job["files_done"] < job["files_total"] and job["finished_at"] is not None
        assert_nothing_of(case, client, FILLING)
        # Every byte the download wrote is free again (the filler still holds the rest).
        assert shutil.disk_usage(case.mount).used - filled <= used_before + (1 << 20)
        # The disk is still full: the loaded model answers anyway, and so does the service.
        assert_minilm_serves(client)
        assert client.get("/api/status").status_code == 200
        print(f"disk filled ({filled >> 20} MB) -> job failed in {time.monotonic() - began:.2f} s")

        # Space back: the same download now goes through (nothing stale in the way).
        filler.unlink()
        case.hub.chunk_delay = 0.0
        retried = client.post("/api/models/download?wait=true", json={"model_id": FILLING})
        assert retried.status_code == 202, retried.text
        assert retried.json()["state"] == "done", retried.json()
        assert client.get(f"/api/models/{FILLING}").json()["downloaded"] is True
