"""The hub cache's model folders on disk: which models are there, their size, atomic deletion."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from frontend.models.cache import InvalidModelId, check_hf_id

REPO_PREFIX = "models--"
DELETING_PREFIX = ".deleting-"


def disk_usage(path: Path) -> int:
    """Bytes of the regular files under path (links not followed, so blobs count once)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                stat = os.lstat(os.path.join(root, name))
                if not os.path.islink(os.path.join(root, name)):
                    total += stat.st_size
    return total


def cached_ids(hub_dir: Path) -> list[str]:
    """The Hugging Face ids with a folder in the cache (links and odd names left out)."""
    if not hub_dir.is_dir():
        return []
    found = []
    for path in sorted(hub_dir.iterdir()):
        if path.name.startswith(REPO_PREFIX) and path.is_dir() and not path.is_symlink():
            model_id = path.name[len(REPO_PREFIX) :].replace("--", "/", 1)
            with contextlib.suppress(InvalidModelId):
                found.append(check_hf_id(model_id))
    return found


def remove_repo(hub_dir: Path, repo: Path) -> int:
    """Delete one model folder; returns the bytes it held."""
    # Renamed first (atomic), so a model half-deleted by a crash never looks downloaded.
    size = disk_usage(repo)
    doomed = hub_dir / f"{DELETING_PREFIX}{uuid.uuid4().hex}"
    os.replace(repo, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return size


def sweep_deleted(hub_dir: Path) -> None:
    """Finish deletions a crash interrupted."""
    if hub_dir.is_dir():
        for path in hub_dir.glob(f"{DELETING_PREFIX}*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
