"""The reaper under the embedded tritonserver: nothing of the tree it runs outlives it.

A small Python program stands in for tritonserver: it starts a "stub" that ignores SIGTERM
(as a futex-stuck stub does) and maps a region in /dev/shm named with the test's prefix. Real
processes, real signals; only processes this test started are signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from frontend.models.stubs import is_alive
from frontend.triton import reaper

SERVER = """
import mmap, os, signal, subprocess, sys, time
prefix, pid_file, mode = sys.argv[1:]
stub = subprocess.Popen([sys.executable, "-c", '''
import mmap, os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fd = os.open("/dev/shm/" + sys.argv[1] + "stub", os.O_CREAT | os.O_RDWR)
os.ftruncate(fd, 4096)
region = mmap.mmap(fd, 4096)
open(sys.argv[2], "w").write(str(os.getpid()))
time.sleep(60)
''', prefix, pid_file])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
for _ in range(600):
    if os.path.exists(pid_file):
        break
    time.sleep(0.01)
if mode == "exit":
    sys.exit(3)
time.sleep(60)
"""


@contextmanager
def reaped(tmp_path: Path, mode: str) -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """The reaper running the stand-in server; yields it, the stub's pid and the prefix."""
    prefix = f"homelab_test_{uuid.uuid4().hex[:12]}_"
    pid_file = tmp_path / "stub.pid"
    process = subprocess.Popen(
        [
            sys.executable,
            "-I",
            reaper.__file__,
            f"--parent={os.getpid()}",
            f"--work-dir={tmp_path}",
            f"--shm-prefix={prefix}",
        ],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdin is not None
    command = [sys.executable, "-c", SERVER, prefix, str(pid_file), mode]
    process.stdin.write(json.dumps(command).encode() + b"\n")
    process.stdin.flush()
    try:
        for _ in range(1000):  # the stub is up (bounded: ~10 s)
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.01)
        yield process, int(pid_file.read_text()), prefix
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        for region in reaper.SHM_DIR.glob(f"{prefix}*"):
            region.unlink()


def gone(pid: int, seconds: float = 10) -> bool:
    for _ in range(int(seconds / 0.05)):
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)


def test_when_the_server_exits_its_orphaned_stub_is_killed_and_its_region_removed(
    tmp_path: Path,
) -> None:
    with reaped(tmp_path, "exit") as (process, stub, prefix):
        assert process.wait(20) == 3  # the server's own exit status
        assert gone(stub)
        assert not list(reaper.SHM_DIR.glob(f"{prefix}*"))


def test_when_the_frontend_goes_the_server_and_its_stub_are_killed(tmp_path: Path) -> None:
    with reaped(tmp_path, "wait") as (process, stub, prefix):
        assert list(reaper.SHM_DIR.glob(f"{prefix}*"))
        assert process.stdin is not None
        process.stdin.close()  # what the frontend's death does to the pipe
        assert process.wait(20) == 1
        assert gone(stub)
        assert not list(reaper.SHM_DIR.glob(f"{prefix}*"))


def test_sigterm_lets_the_server_stop_then_ends_the_stub_that_ignores_it(tmp_path: Path) -> None:
    with reaped(tmp_path, "wait") as (process, stub, prefix):
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0  # the server handled SIGTERM and exited 0
        assert gone(stub)
        assert not list(reaper.SHM_DIR.glob(f"{prefix}*"))


@pytest.mark.parametrize("prefix", ["", "homelab_none_"])
def test_remove_shm_touches_only_its_prefix(tmp_path: Path, prefix: str) -> None:
    other = reaper.SHM_DIR / f"homelab_other_{uuid.uuid4().hex[:8]}"
    other.write_bytes(b"x")
    try:
        assert reaper.remove_shm(prefix) == []
        assert other.exists()
    finally:
        other.unlink()
