"""Stub processes are found by their command line; their memory and liveness read by psutil."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontend.models.stubs import (
    STUB_NAME,
    find_pids,
    is_alive,
    process_tree,
    resident_bytes,
    rss_bytes,
    stub_pids,
)


@pytest.fixture
def fake_stub(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line looks like the stub of model `m` in tmp_path."""
    model_py = tmp_path.resolve() / "m" / "1" / "model.py"
    code = "import time; print('up', flush=True); time.sleep(60)"
    command = [sys.executable, "-c", code, STUB_NAME, str(model_py)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        yield process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_models_stubs_are_found_by_repository_and_model(
    tmp_path: Path, fake_stub: subprocess.Popen[bytes]
) -> None:
    assert stub_pids(tmp_path, "m") == [fake_stub.pid]
    assert stub_pids(tmp_path, "other") == []
    assert stub_pids(tmp_path / "elsewhere", "m") == []


def test_resident_bytes_sums_live_processes_and_skips_gone_ones(
    fake_stub: subprocess.Popen[bytes],
) -> None:
    alone = resident_bytes([fake_stub.pid])

    assert alone > 1 << 20  # a Python interpreter holds megabytes
    assert resident_bytes([fake_stub.pid, 2**22 + 1]) == alone  # no such pid
    assert resident_bytes([]) == 0


def test_processes_are_found_by_argv_and_their_tree_and_rss_read(
    tmp_path: Path, fake_stub: subprocess.Popen[bytes]
) -> None:
    marker = str(tmp_path.resolve() / "m" / "1" / "model.py")

    assert find_pids(lambda argv: argv[-1:] == [marker]) == [fake_stub.pid]
    tree = process_tree(os.getpid())
    assert tree[os.getpid()] and fake_stub.pid in tree  # the caller and its child
    assert process_tree(2**22 + 1) == {}
    assert rss_bytes(fake_stub.pid) > 1 << 20
    assert rss_bytes(2**22 + 1) == 0


def test_a_zombie_or_gone_process_is_not_alive(fake_stub: subprocess.Popen[bytes]) -> None:
    assert is_alive(fake_stub.pid)

    fake_stub.kill()
    deadline = time.monotonic() + 5
    while is_alive(fake_stub.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(fake_stub.pid)  # a zombie until reaped
    fake_stub.wait()
    assert not is_alive(fake_stub.pid)
