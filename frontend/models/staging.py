"""Download staging directories under the hub cache: created locked, swept once unlocked."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

STAGING_PREFIX = ".download-"
# A staging directory without its lock file is being created right now, or was left by a crash
# in between: only the second kind (older than this) is removed.
UNLOCKED_STAGING_GRACE_SECONDS = 300.0


def _age_seconds(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def sweep_staging(hub_dir: Path) -> int:
    """Remove staging directories that no download holds any more (left by a crash).

    Each live download holds an flock on its ``.lock`` file (released by the kernel when the
    process dies), so this is safe while other processes download into the same hub.
    """
    removed = 0
    try:
        candidates = [p for p in hub_dir.glob(STAGING_PREFIX + "*") if not p.is_symlink()]
    except OSError:
        return 0
    for staging in candidates:
        if not staging.is_dir():
            continue
        try:
            fd = os.open(staging / ".lock", os.O_RDWR)
        except FileNotFoundError:
            if _age_seconds(staging) > UNLOCKED_STAGING_GRACE_SECONDS:
                shutil.rmtree(staging, ignore_errors=True)
                removed += 1
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a download is using it
            shutil.rmtree(staging, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def create_staging(hub_dir: Path) -> tuple[Path, int]:
    """A fresh staging directory under the hub, locked (see sweep_staging) before it is visible
    with its lock file: the lock is taken on a temporary name and then renamed into place."""
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=hub_dir))
    fd = os.open(staging / ".lock.tmp", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(staging / ".lock.tmp", staging / ".lock")
    except BaseException:
        os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, fd
