"""What an earlier embedded Triton of the same data dir left behind, found and ended at start.

A tritonserver, its reaper or model stubs still running (a run of an older version, or one
whose whole tree was SIGKILLed at once), and the Python backend's shared-memory regions in
/dev/shm that nothing maps any more. Everything is recognised by the data dir's own marks,
never by a name alone: other Tritons on the host (other data dirs, other users) are left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import time
from pathlib import Path

import psutil

from frontend.models.stubs import find_pids, is_alive
from frontend.triton.reaper import SHM_DIR

logger = logging.getLogger(__name__)


def shm_prefix(work_dir: Path) -> str:
    """The Python backend's shm-region prefix for this work dir (the default prefix is shared by
    every Triton on the host, so its regions could not be told apart)."""
    digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:16]
    return f"homelab_triton_{digest}_"


def markers(work_dir: Path) -> tuple[str, str]:
    """What the command line of tritonserver or a stub (the backend dir) or of the reaper and
    a stub (the shm prefix) of this work dir contains."""
    return f"{work_dir.resolve()}/backends/", shm_prefix(work_dir)


def leftover_pids(work_dir: Path) -> list[int]:
    """This user's live processes that belong to this work dir's Triton (not this process)."""
    marks = markers(work_dir)
    me, uid = os.getpid(), os.getuid()

    def ours(argv: list[str]) -> bool:
        cmdline = " ".join(argv)
        return any(mark in cmdline for mark in marks)

    pids = []
    for pid in find_pids(ours):
        with contextlib.suppress(psutil.Error):
            if pid != me and psutil.Process(pid).uids().real == uid and is_alive(pid):
                pids.append(pid)
    return pids


def mapped_regions(prefix: str) -> set[str]:
    """The /dev/shm files named with `prefix` that a live process (readable here) maps."""
    needle = f"{SHM_DIR}/{prefix}"
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            maps = (entry / "maps").read_text(errors="replace")
        except OSError:
            continue
        for line in maps.splitlines():
            at = line.find(needle)
            if at >= 0:
                found.add(line[at + len(f"{SHM_DIR}/") :].removesuffix(" (deleted)"))
    return found


def end_leftovers(work_dir: Path, timeout: float = 10.0) -> tuple[int, int]:
    """SIGKILL what an earlier run of this work dir left running, then unlink its unused shm
    regions: (processes ended, regions removed)."""
    ended: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = leftover_pids(work_dir)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # also ends a stopped or futex-stuck stub
                ended.add(pid)
        time.sleep(0.1)
    prefix = shm_prefix(work_dir)
    in_use = mapped_regions(prefix)
    removed = 0
    for region in SHM_DIR.glob(f"{prefix}*"):
        if region.name in in_use:
            continue
        with contextlib.suppress(OSError):
            region.unlink()
            removed += 1
    if ended or removed:
        logger.warning(
            "ended %d Triton processes and removed %d shared-memory regions an earlier run of "
            "%s left behind",
            len(ended),
            removed,
            work_dir,
        )
    return len(ended), removed
