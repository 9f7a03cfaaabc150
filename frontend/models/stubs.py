"""Find a model's Triton stub processes on this host, and what memory they hold.

Each loaded model instance is one `triton_python_backend_stub` process whose command line
names the model's `model.py` in our repository; that is how a model's footprint is measured
and how an unload is known to be finished. When Triton runs on another host (Docker,
Kubernetes) no stub is visible here and callers fall back to Triton's readiness API.
"""

from __future__ import annotations

from pathlib import Path

STUB_NAME = "triton_python_backend_stub"


def _cmdline(pid_dir: Path) -> str:
    try:
        return (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stub_pids(repository: Path, model_id: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the stub processes serving `model_id` from `repository`."""
    marker = f"{repository.resolve()}/{model_id}/1/model.py"
    pids = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            cmdline = _cmdline(entry)
            if STUB_NAME in cmdline and marker in cmdline:
                pids.append(int(entry.name))
    return pids


def resident_bytes(pids: list[int], proc: Path = Path("/proc")) -> int:
    """Sum of the processes' proportional set size (shared pages split fairly), else RSS."""
    total = 0
    for pid in pids:
        try:
            text = (proc / str(pid) / "smaps_rollup").read_text()
            key = "Pss:"
        except OSError:
            try:
                text = (proc / str(pid) / "status").read_text()
                key = "VmRSS:"
            except OSError:
                continue
        for line in text.splitlines():
            if line.startswith(key):
                total += int(line.split()[1]) * 1024
                break
    return total
