"""frontend.models.downloads against a local fake hub: the real huggingface_hub client code runs."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontend.models.cache import InvalidModelId, is_downloaded, repo_dir, snapshot_path
from frontend.models.downloads import DownloadJob, DownloadManager, select_files
from frontend.models.hub_errors import describe_error
from frontend.models.staging import STAGING_PREFIX, sweep_staging
from tests.fake_hub import FakeHub, HangingServer, closed_port, folder_files

MODEL = "acme/tiny-encoder"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small sentence-transformers-like repo: configs, a tokenizer and two LFS weight files."""
    src = tmp_path / "source"
    (src / "1_Pooling").mkdir(parents=True)
    (src / "2_Dense").mkdir()
    (src / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (src / "modules.json").write_text('[{"idx": 0, "path": ""}]', encoding="utf-8")
    (src / "1_Pooling" / "config.json").write_text('{"pooling": "mean"}', encoding="utf-8")
    (src / "tokenizer.json").write_bytes(os.urandom(40_000))
    (src / "model.safetensors").write_bytes(os.urandom(200_000))
    (src / "2_Dense" / "model.safetensors").write_bytes(os.urandom(120_000))
    return src


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "models" / "hub"


@pytest.fixture
def hub(source: Path) -> Iterator[FakeHub]:
    with FakeHub({MODEL: source}) as running:
        yield running


def run(coro: Coroutine[Any, Any, DownloadJob]) -> DownloadJob:
    return asyncio.run(coro)


async def download(manager: DownloadManager, model_id: str = MODEL) -> DownloadJob:
    job = await manager.start(model_id)
    return await manager.wait(job.id)


def leftovers(hub_dir: Path) -> list[str]:
    """Anything in the hub besides complete model repos (staging, temp and lock files)."""
    if not hub_dir.exists():
        return []
    found = []
    for path in hub_dir.rglob("*"):
        relative = path.relative_to(hub_dir).as_posix()
        temporary = path.name.endswith((".incomplete", ".lock")) or "/.import-" in relative
        if temporary or relative.startswith((STAGING_PREFIX, ".locks")):
            found.append(relative)
    return found


def assert_installed(hub_dir: Path, source: Path) -> None:
    assert is_downloaded(hub_dir, MODEL)
    snapshot = snapshot_path(hub_dir, MODEL)
    assert snapshot is not None
    assert folder_files(snapshot) == folder_files(source)
    assert leftovers(hub_dir) == []


def test_download_reports_progress_while_running(hub: FakeHub, hub_dir: Path, source: Path) -> None:
    hub.chunk_delay = 0.01  # 16 KB per 10 ms: about 0.25 s for the whole repo

    async def scenario() -> tuple[DownloadJob, list[tuple[str, int, int]]]:
        manager = DownloadManager(hub_dir, endpoint=hub.url)
        job = await manager.start(MODEL)
        seen: list[tuple[str, int, int]] = []
        while True:
            current = manager.get(job.id)
            assert current is not None
            seen.append((current.state, current.bytes_done, current.files_done))
            if current.finished:
                break
            await asyncio.sleep(0.002)
        return await manager.wait(job.id), seen

    job, seen = asyncio.run(scenario())
    total = sum(len(data) for data in folder_files(source).values())
    assert job.state == "done", job.error
    assert job.error is None and job.finished_at is not None
    assert job.bytes_total == total and job.bytes_done == total
    assert job.files_total == job.files_done == len(folder_files(source))
    running = [done for state, done, _ in seen if state == "running"]
    assert running == sorted(running), "progress went backwards"
    assert len({done for done in running if 0 < done < total}) >= 2, seen
    assert {files for state, _, files in seen if state == "running"} >= {1, 2}
    assert job.to_dict()["state"] == "done" and job.to_dict()["bytes_done"] == total
    assert_installed(hub_dir, source)
    # What the hub served: one listing, each file's body once.
    assert hub.count("GET", "/api/models/") == 1
    assert hub.downloads(MODEL) == dict.fromkeys(folder_files(source), 1)


def test_concurrent_starts_share_one_download(
    hub: FakeHub, hub_dir: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.chunk_delay = 0.002
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the endpoint comes from the environment here

    async def scenario() -> tuple[DownloadJob, DownloadJob, DownloadJob]:
        manager = DownloadManager(hub_dir)
        first, second = await asyncio.gather(manager.start(MODEL), manager.start(MODEL))
        third = await manager.start(MODEL)
        assert manager.active_job(MODEL) is first
        assert first is second is third and len(manager.jobs()) == 1
        await asyncio.gather(manager.wait(first.id), manager.wait(second.id))
        assert manager.active_job(MODEL) is None
        return first, second, third

    first, _, _ = asyncio.run(scenario())
    assert first.state == "done", first.error
    assert hub.downloads(MODEL) == dict.fromkeys(folder_files(source), 1)
    assert_installed(hub_dir, source)


def test_model_already_present_is_done_without_network(
    hub: FakeHub, hub_dir: Path, source: Path
) -> None:
    assert run(download(DownloadManager(hub_dir, endpoint=hub.url))).state == "done"
    requests_before = len(hub.requests)

    async def again() -> DownloadJob:
        manager = DownloadManager(hub_dir, endpoint=hub.url)
        job = await manager.start(MODEL)
        assert job.state == "done"  # at once, before any waiting
        assert manager.get(job.id) is job and manager.jobs() == [job]
        return await manager.wait(job.id)

    job = run(again())
    assert job.files_done == job.files_total == len(folder_files(source))
    assert job.bytes_done == job.bytes_total == sum(map(len, folder_files(source).values()))
    assert len(hub.requests) == requests_before  # no request at all, let alone file GETs


def test_interrupted_download_leaves_nothing_behind(
    hub: FakeHub, hub_dir: Path, source: Path
) -> None:
    # Every body longer than 50 KB is cut after 50 KB; huggingface_hub resumes a few times
    # (1 s apart) and then gives up.
    hub.drop_after = 50_000
    started = time.monotonic()
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url)))
    elapsed = time.monotonic() - started
    assert job.state == "failed"
    assert job.error is not None and "broke off" in job.error and "downloading" in job.error
    assert str(hub_dir) not in job.error and "/tmp" not in job.error
    assert elapsed < 15
    assert not is_downloaded(hub_dir, MODEL)
    assert not repo_dir(hub_dir, MODEL).exists()
    assert sorted(p.name for p in hub_dir.iterdir()) == []  # no staging, no temp files

    hub.drop_after = None
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url)))
    assert job.state == "done", job.error
    assert_installed(hub_dir, source)


def test_dropped_connection_is_resumed(hub: FakeHub, hub_dir: Path, source: Path) -> None:
    hub.drop_after, hub.drop_times = 30_000, 1  # one cut, then the hub behaves
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url)))
    assert job.state == "done", job.error
    assert job.bytes_done == job.bytes_total
    assert max(hub.downloads(MODEL).values()) == 2
    assert_installed(hub_dir, source)


def test_hub_unreachable_fails_fast(hub_dir: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    job = run(download(DownloadManager(hub_dir, endpoint=endpoint)))  # default 10 s timeout
    assert time.monotonic() - started < 3
    assert job.state == "failed"
    assert job.error == (
        f"cannot connect to the hub at {endpoint} (listing the model's files): "
        "is it reachable from this server?"
    )
    assert not is_downloaded(hub_dir, MODEL) and leftovers(hub_dir) == []
    assert not repo_dir(hub_dir, MODEL).exists()


def test_hanging_hub_fails_after_the_timeout(hub_dir: Path) -> None:
    with HangingServer() as server:
        started = time.monotonic()
        job = run(download(DownloadManager(hub_dir, endpoint=server.url, etag_timeout=1.0)))
        elapsed = time.monotonic() - started
        connections = len(server.connections)
    assert job.state == "failed"
    assert job.error is not None and "did not respond in time" in job.error
    assert server.url in job.error and str(hub_dir) not in job.error
    # One attempt, no retries: with the default 10 s timeout it fails after about 10 s.
    assert 0.9 < elapsed < 4, elapsed
    assert connections == 1
    assert leftovers(hub_dir) == [] and not repo_dir(hub_dir, MODEL).exists()


def test_unknown_repo_fails_clearly(hub: FakeHub, hub_dir: Path) -> None:
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url), "acme/no-such-model"))
    assert job.state == "failed"
    assert job.error == "model acme/no-such-model not found on the hub (or it is private)"
    assert not repo_dir(hub_dir, "acme/no-such-model").exists() and leftovers(hub_dir) == []
    assert sum(hub.downloads().values()) == 0


def test_repo_without_a_config_is_refused_before_downloading(
    hub: FakeHub, hub_dir: Path, tmp_path: Path
) -> None:
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    (weights_only / "model.gguf").write_bytes(os.urandom(20_000))
    hub.add_repo("acme/gguf", weights_only)
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url), "acme/gguf"))
    assert job.state == "failed" and job.error is not None and "config.json" in job.error
    assert sum(hub.downloads().values()) == 0 and leftovers(hub_dir) == []


@pytest.mark.parametrize(
    "model_id",
    [
        "../../etc/passwd",
        "acme/../../x",
        "acme/name/extra",
        "/abs/path",
        "acme\\name",
        "",
        "acme/",
        "single",
        "acme/na me",
        "acme/name\n",
        "a" * 97 + "/name",
    ],
)
def test_hostile_ids_are_rejected_before_any_access(
    hub: FakeHub, hub_dir: Path, model_id: str
) -> None:
    manager = DownloadManager(hub_dir, endpoint=hub.url)
    with pytest.raises(InvalidModelId):
        asyncio.run(manager.start(model_id))
    assert not hub_dir.exists() and hub.requests == [] and manager.jobs() == []


def test_builtin_engines_have_nothing_to_download(hub: FakeHub, hub_dir: Path) -> None:
    manager = DownloadManager(hub_dir, endpoint=hub.url)
    with pytest.raises(ValueError, match="nothing to download") as raised:
        asyncio.run(manager.start("rapidocr/PP-OCRv4"))
    assert not isinstance(raised.value, InvalidModelId)
    assert not hub_dir.exists() and hub.requests == [] and manager.jobs() == []


def test_cancel_stops_a_running_download(hub: FakeHub, hub_dir: Path) -> None:
    hub.chunk_delay = 0.05

    async def scenario() -> DownloadJob:
        manager = DownloadManager(hub_dir, endpoint=hub.url)
        job = await manager.start(MODEL)
        while job.files_done < 1:
            await asyncio.sleep(0.01)
        assert manager.cancel(job.id)
        return await manager.wait(job.id)

    job = run(scenario())
    assert job.state == "failed" and job.error == "download cancelled"
    assert not is_downloaded(hub_dir, MODEL) and leftovers(hub_dir) == []


def test_sweep_removes_only_abandoned_staging(hub_dir: Path) -> None:
    hub_dir.mkdir(parents=True)
    abandoned = hub_dir / f"{STAGING_PREFIX}dead"
    (abandoned / "blobs").mkdir(parents=True)
    (abandoned / ".lock").touch()
    live = hub_dir / f"{STAGING_PREFIX}live"
    live.mkdir()
    (live / ".lock").touch()
    fresh = hub_dir / f"{STAGING_PREFIX}fresh"  # being created: no lock file yet
    fresh.mkdir()
    fd = os.open(live / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep_staging(hub_dir) == 1
    finally:
        os.close(fd)
    assert not abandoned.exists() and live.exists() and fresh.exists()


def test_select_files_skips_duplicate_weights() -> None:
    listing = [
        ".gitattributes",
        "1_Pooling/config.json",
        "README.md",
        "config.json",
        "model.safetensors",
        "modules.json",
        "onnx/model.onnx",
        "onnx/model_qint8_avx512.onnx",
        "openvino/openvino_model.bin",
        "pytorch_model.bin",
        "rust_model.ot",
        "tf_model.h5",
        "flax_model.msgpack",
        "tokenizer.json",
        "2_Dense/pytorch_model.bin",
    ]
    assert select_files(listing) == [
        ".gitattributes",
        "1_Pooling/config.json",
        "2_Dense/pytorch_model.bin",  # no safetensors beside it: kept
        "README.md",
        "config.json",
        "model.safetensors",
        "modules.json",
        "tokenizer.json",
    ]
    sharded = ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json"]
    sharded += ["pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json"]
    assert select_files(sharded) == sharded[:3]
    onnx_only = ["config.json", "onnx/model.onnx", "tokenizer.json"]
    assert select_files(onnx_only) == onnx_only  # nothing else to load: kept


def test_skipped_files_are_not_fetched(hub: FakeHub, hub_dir: Path, source: Path) -> None:
    (source / "tf_model.h5").write_bytes(os.urandom(30_000))
    (source / "pytorch_model.bin").write_bytes(os.urandom(30_000))
    hub.add_repo(MODEL, source)
    job = run(download(DownloadManager(hub_dir, endpoint=hub.url)))
    assert job.state == "done", job.error
    snapshot = snapshot_path(hub_dir, MODEL)
    assert snapshot is not None
    files = folder_files(snapshot)
    assert "tf_model.h5" not in files and "pytorch_model.bin" not in files
    assert "tf_model.h5" not in hub.downloads(MODEL)
    assert job.files_total == len(files) == len(folder_files(source)) - 2


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_full_disk_is_named_as_such(code: int) -> None:
    cause = OSError(code, os.strerror(code), "/data/models/hub/.download-x/blob.incomplete")
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = cause
    for error in (cause, wrapped):
        message = describe_error(error, "acme/model", "http://hub.test", "downloading a.bin")
        assert message.startswith("not enough disk space for acme/model: ")
        assert "(downloading a.bin)" in message and "/data" not in message


def test_progress_counter_is_the_hubs_tqdm_counting_silently(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub.utils import tqdm as hub_tqdm

    from frontend.models.progress import byte_counter

    counted: list[int] = []
    counter = byte_counter(counted.append)

    with counter(total=100, disable=False, desc="model.safetensors") as bar:
        bar.update(40)
        bar.update(-10)  # the hub rolls back bytes a server made it download again
        bar.update_transfer(40)  # network bytes: already counted by update()
        bar.set_postfix_str("1 MB/s")

    assert issubclass(counter, hub_tqdm)
    assert counted == [40, -10] and bar.n == 30 and bar.total == 100
    assert capsys.readouterr().err == ""


def test_a_progress_callback_that_raises_stops_the_download() -> None:
    from frontend.models.progress import byte_counter

    def cancel(count: int) -> None:
        raise RuntimeError("cancelled")

    bar = byte_counter(cancel)(total=10)

    with pytest.raises(RuntimeError, match="cancelled"):
        bar.update(5)
