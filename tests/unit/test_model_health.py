"""Restart accounting: backoff, the give-up, the window, and an operator's reset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from frontend.models.health import HealthBook
from frontend.triton.embedded import stop_leftover


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_restarts_back_off_then_give_up_within_the_window() -> None:
    clock = Clock()
    book = HealthBook(max_restarts=3, window_seconds=60, clock=clock)
    delays = [book.begin_restart("m", "died") for _ in range(3)]
    assert delays == [0.0, 1.0, 2.0]
    assert book.get("m").state == "restarting"
    book.ok("m")
    assert book.failed_reason("m") is None
    assert book.begin_restart("m", "died again") is None
    health = book.get("m").to_dict()
    assert health["state"] == "failed" and health["restarts"] == 4
    assert "died again; restarted 3 times in the last 60 s" in health["reason"]
    assert book.failed_reason("m") == health["reason"]


def test_restarts_outside_the_window_are_forgotten() -> None:
    clock = Clock()
    book = HealthBook(max_restarts=2, window_seconds=60, clock=clock)
    assert book.begin_restart("m", "a") == 0.0
    assert book.begin_restart("m", "b") == 1.0
    clock.now += 61
    assert book.begin_restart("m", "c") == 0.0  # a fresh budget: the old ones aged out
    assert book.get("m").restarts == 3


def test_an_operator_load_resets_a_failed_model() -> None:
    book = HealthBook(max_restarts=0, window_seconds=60)
    assert book.begin_restart("m", "died") is None
    book.reset("m")
    assert book.get("m").state == "ok"
    assert book.begin_restart("m", "died") is None  # max 0: never restarted, fails again


def test_a_pid_file_naming_another_program_is_left_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = tmp_path / "tritonserver.pid"
        pid_file.write_text(f"{other.pid}\n")
        assert stop_leftover(pid_file, tmp_path) is False
        assert other.poll() is None  # a reused pid is never signalled
        assert not pid_file.exists()
        pid_file.write_text("not a pid\n")
        assert stop_leftover(pid_file, tmp_path) is False
    finally:
        other.kill()
        other.wait(5)
