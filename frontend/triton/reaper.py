"""The embedded tritonserver's parent: ends Triton's whole process tree when either side dies.

    python -I frontend/triton/reaper.py --parent PID --work-dir DIR --shm-prefix PREFIX

reads the tritonserver command as one JSON line on stdin and keeps stdin open: its end (EOF)
means the frontend is gone, however it died. It runs tritonserver as its child and is a child
subreaper (PR_SET_CHILD_SUBREAPER), so the model stubs a dying tritonserver orphans come to it
rather than to PID 1: a stub whose server was SIGKILLed mid-inference can wait on a futex for
good (seen: ~250 MB each, still there 50 minutes later). When tritonserver exits, or the
frontend goes, or a SIGTERM comes, it SIGKILLs every process left in its tree and its process
group, removes their `/dev/shm/PREFIX*` regions and exits with tritonserver's status.

Standard library only (run as a file, in isolated mode); it never imports the service.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("reaper")
SHM_DIR = Path("/dev/shm")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_POLL_SECONDS = 0.2
_KILL_ROUNDS_SECONDS = 10.0


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value)


def _server_dies_with_us() -> None:  # pragma: no cover - runs in the child before exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def remove_shm(prefix: str) -> list[str]:
    """Unlink every shared-memory region named with `prefix` (the data dir's own)."""
    removed: list[str] = []
    if not prefix:
        return removed
    for region in SHM_DIR.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            region.unlink()
            removed.append(region.name)
    return removed


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[1]), int(fields[2])


def tree_and_group(root: int) -> list[int]:
    """Live processes below `root`, plus those of its process group; `root` itself left out."""
    # The group counts only when this process leads it (started in a session of its own):
    # otherwise it is the frontend's group.
    group = os.getpgid(root) if os.getpgid(root) == root else -1
    children: dict[int, list[int]] = {}
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] == "Z":  # a zombie is dead already: reaped below
            continue
        children.setdefault(stat[1], []).append(int(entry.name))
        if stat[2] == group:
            members.add(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted((found | members) - {root})


def _reap() -> list[tuple[int, int]]:
    """Collect every child that exited: (pid, wait status)."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def end_tree(prefix: str) -> int:
    """SIGKILL everything below this process and in its group, reap it, remove its regions."""
    me = os.getpid()
    killed: set[int] = set()
    deadline = time.monotonic() + _KILL_ROUNDS_SECONDS
    while time.monotonic() < deadline:
        left = tree_and_group(me)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.05)
        _reap()
    _reap()
    regions = remove_shm(prefix)
    logger.info(
        "reaper: ended %d processes, removed %d shared-memory regions", len(killed), len(regions)
    )
    return len(killed)


def _read_command(fd: int) -> list[str]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            raise SystemExit("reaper: no command on stdin")
        data += chunk
    command = json.loads(data)
    if not isinstance(command, list) or not command:
        raise SystemExit("reaper: the command must be a JSON list")
    return [str(part) for part in command]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reaper.py")
    parser.add_argument("--parent", type=int, required=True, help="the frontend's pid")
    parser.add_argument("--work-dir", required=True, help="the embedded Triton's work dir")
    parser.add_argument("--shm-prefix", required=True, help="its Python-backend shm prefix")
    return parser.parse_args(list(argv))


def run(args: argparse.Namespace) -> int:
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    command = _read_command(0)
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_server_dies_with_us)
    forwarded = False
    while True:
        readable, _, _ = select.select([0], [], [], _POLL_SECONDS)
        # EOF: the frontend's end of the pipe is closed; a new parent: it died before that.
        parent_gone = (bool(readable) and not os.read(0, 4096)) or os.getppid() != args.parent
        if parent_gone:
            logger.warning("reaper: the frontend is gone; ending tritonserver and its stubs")
            end_tree(args.shm_prefix)
            return 1
        for pid, status in _reap():
            if pid == server.pid:
                code = os.waitstatus_to_exitcode(status)
                logger.info("reaper: tritonserver exited (%s); ending what it left", code)
                end_tree(args.shm_prefix)
                return code if code >= 0 else 128 - code
        if stop and not forwarded:
            forwarded = True  # tritonserver shuts down (its --exit-timeout-secs), then the rest
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
