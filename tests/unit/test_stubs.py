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


def _stub(model_py: Path) -> subprocess.Popen[bytes]:
    code = "import time; print('up', flush=True); time.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "-c", code, STUB_NAME, str(model_py)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    process.stdout.close()
    return process


def test_a_killed_stub_still_listed_at_the_reload_is_not_taken_for_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a starved machine a SIGKILLed stub can still be listed when the restart's reload
    records its new stubs; once it is gone the watcher must not see the healthy model as dead
    (it restarted it a second time: seen once under load in tests/faults)."""
    from types import SimpleNamespace

    from frontend.core.config import Settings
    from frontend.models import healing

    entry = SimpleNamespace(id="m")
    registry = SimpleNamespace(
        settings=Settings(),
        repository=tmp_path,
        forget=lambda model_id: None,
        loaded_entries=lambda: [entry],
    )
    doctor = healing.ModelDoctor(registry)
    model_py = tmp_path.resolve() / "m" / "1" / "model.py"
    old = _stub(model_py)
    new = None
    late: list[int] = []
    try:
        doctor.loaded("m")
        assert doctor.dead_models() == []
        # the kill is sent; the kernel has not ended the process yet
        monkeypatch.setattr(healing.os, "kill", lambda pid, sig: late.append(pid))
        assert doctor._kill_stubs(entry) == [old.pid]  # type: ignore[arg-type]
        monkeypatch.undo()
        new = _stub(model_py)
        doctor.loaded("m")  # the reload: the old stub is still listed
        assert late == [old.pid] and sorted(stub_pids(tmp_path, "m")) == sorted([old.pid, new.pid])
        old.kill()
        old.wait()
        assert doctor.dead_models() == []  # the new stub lives: nothing to restart
        new.kill()
        new.wait()
        assert doctor.dead_models() == [entry]  # its own stub dying still counts
    finally:
        for process in (old, new):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
