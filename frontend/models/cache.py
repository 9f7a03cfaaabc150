"""The Hugging Face cache under HF_HOME: model paths, detection, and importing local folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from frontend.core.config import HF_ID_PATTERN


class InvalidModelId(ValueError):
    """Not a Hugging Face model id (and so never turned into a path)."""


def check_hf_id(model_id: str) -> str:
    if not HF_ID_PATTERN.fullmatch(model_id) or ".." in model_id or "/" not in model_id:
        raise InvalidModelId(
            f"'{model_id[:100]}' is not a Hugging Face model id of the form ORG/NAME"
        )
    return model_id


def repo_dir(hub_dir: Path, model_id: str) -> Path:
    """hub/models--{org}--{name}: the directory the HF libraries use for this model."""
    check_hf_id(model_id)
    return hub_dir / ("models--" + model_id.replace("/", "--"))


def snapshot_path(hub_dir: Path, model_id: str) -> Path | None:
    """The snapshot that refs/main points at, if it is complete enough to load."""
    repo = repo_dir(hub_dir, model_id)
    try:
        revision = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not revision or "/" in revision or revision.startswith("."):
        return None
    snapshot = repo / "snapshots" / revision
    # buffalo_l (Immich's face models) has no config.json, only its two ONNX graphs
    markers = ("config.json", "modules.json", "detection/model.onnx")
    if any((snapshot / marker).is_file() for marker in markers):
        return snapshot
    return None


def model_revision(hub_dir: Path, model_id: str) -> str | None:
    """The revision (snapshot name) refs/main points at, if that snapshot can be loaded."""
    try:
        snapshot = snapshot_path(hub_dir, model_id)
    except InvalidModelId:
        return None
    return snapshot.name if snapshot is not None else None


def is_downloaded(hub_dir: Path, model_id: str) -> bool:
    return snapshot_path(hub_dir, model_id) is not None


@dataclass(frozen=True)
class ImportResult:
    model_id: str
    revision: str
    snapshot: Path
    files: int
    bytes: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def import_model(source: Path, model_id: str, hub_dir: Path) -> ImportResult:
    """Copy a local model folder into the cache layout the HF libraries read offline.

    Files become content-addressed blobs, the snapshot holds relative links to them (as
    huggingface_hub lays it out), and refs/main is switched only once the snapshot is whole,
    so an interrupted import never leaves a half-written model that looks downloaded.
    """
    check_hf_id(model_id)
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a directory")
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and ".git" not in p.relative_to(source).parts
    )
    if not files:
        raise ValueError(f"{source} contains no files")
    repo = repo_dir(hub_dir, model_id)
    # Temp files are created 0600; give the results the usual modes so that a Triton running
    # as another user (containers) can read them, as huggingface_hub does.
    umask = _current_umask()
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    blobs = repo / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    manifest = hashlib.sha1()
    entries: list[tuple[Path, str]] = []
    total = 0
    for path in files:
        digest = _sha256(path)
        relative = path.relative_to(source)
        manifest.update(f"{relative.as_posix()}\0{digest}\n".encode())
        blob = blobs / digest
        if not blob.exists():
            with (
                tempfile.NamedTemporaryFile(dir=blobs, delete=False) as tmp,
                open(path, "rb") as src,
            ):
                shutil.copyfileobj(src, tmp)
            os.chmod(tmp.name, file_mode)
            os.replace(tmp.name, blob)
        entries.append((relative, digest))
        total += path.stat().st_size
    revision = manifest.hexdigest()
    snapshots = repo / "snapshots"
    snapshot = snapshots / revision
    if not snapshot.exists():
        staging = Path(tempfile.mkdtemp(dir=repo, prefix=".import-"))
        os.chmod(staging, dir_mode)
        for relative, digest in entries:
            link = staging / relative
            link.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blobs / digest, (snapshot / relative).parent))
        snapshots.mkdir(exist_ok=True)
        os.replace(staging, snapshot)
    refs = repo / "refs"
    refs.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=refs, delete=False) as ref:
        ref.write(revision.encode("ascii"))
    os.chmod(ref.name, file_mode)
    os.replace(ref.name, refs / "main")
    return ImportResult(model_id, revision, snapshot, len(entries), total)


def snapshot_totals(snapshot: Path) -> tuple[int, int]:
    """(files, bytes) under a snapshot folder."""
    files = total = 0
    for path in snapshot.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                files += 1
                total += path.stat().st_size
    return files, total
