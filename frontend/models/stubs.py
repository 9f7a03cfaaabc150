"""Find a model's Triton stub processes on this host, and what memory they hold.

Each loaded model instance is one `triton_python_backend_stub` process whose command line
names the model's `model.py` in our repository; that is how a model's footprint is measured
and how an unload is known to be finished. When Triton runs on another host (Docker,
Kubernetes) no stub is visible here and callers fall back to Triton's readiness API.
The same psutil helpers measure the other processes the benchmarks look at (tools/bench_*).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

STUB_NAME = "triton_python_backend_stub"


def find_pids(matches: Callable[[list[str]], bool]) -> list[int]:
    """PIDs of this host's processes whose command line (argv) `matches`."""
    # A process that is gone, a zombie or not ours to read has no command line here (None).
    return [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if matches(list(process.info["cmdline"] or ()))
    ]


def stub_pids(repository: Path, model_id: str) -> list[int]:
    """PIDs of the stub processes serving `model_id` from `repository`."""
    marker = f"{repository.resolve()}/{model_id}/1/model.py"

    def is_stub(argv: list[str]) -> bool:
        cmdline = " ".join(argv)
        return STUB_NAME in cmdline and marker in cmdline

    return find_pids(is_stub)


def process_tree(pid: int) -> dict[int, str]:
    """The process and all its descendants, pid -> name; those gone meanwhile are left out."""
    names: dict[int, str] = {}
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return names
    for process in processes:
        try:
            names[process.pid] = process.name()
        except psutil.Error:
            continue
    return names


def rss_bytes(pid: int) -> int:
    """The process's resident set size (0 when it is gone or not readable)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def resident_bytes(pids: list[int]) -> int:
    """Sum of the processes' proportional set size (shared pages split fairly), else RSS."""
    total = 0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            try:
                total += process.memory_full_info().pss
            except psutil.AccessDenied:  # smaps of another user's process
                total += process.memory_info().rss
        except psutil.Error:  # gone, or not readable at all
            continue
    return total


def is_alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent to reap it."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
