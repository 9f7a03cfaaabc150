"""The sandbox's worker process (`python -m frontend.sandbox FD MEMORY CPU`): runs the
parsing calls sent over its socket under rlimits (address space, CPU time per call, no core
files) and answers with the value, an array's raw bytes, or the APIError the call raised.
State a lease keeps (an open PDF) lives in `session()`. It exits when the socket closes, so a
frontend that dies leaves no worker behind."""

from __future__ import annotations

import importlib
import logging
import math
import resource
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from frontend.core.errors import APIError

logger = logging.getLogger(__name__)
_SESSION: dict[str, Any] = {}
# Imported before the first call, so no call pays for them (the Office readers import lazily).
PRELOAD = (
    "frontend.compat.document_text",
    "frontend.images.pages",
    "docx",
    "openpyxl",
    "pptx",
)


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int
    cpu_seconds: int


def session() -> dict[str, Any]:
    """What the current lease's calls share (its files, its open document); emptied, and
    anything with a close() closed, when the next lease begins."""
    return _SESSION


def _reset_session() -> None:
    for value in _SESSION.values():
        close = getattr(value, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # a damaged document may fail to close; the next lease goes on
                logger.debug("closing a sandbox session value failed", exc_info=True)
    _SESSION.clear()


def _limit_cpu(seconds: int) -> None:
    """The kernel sends SIGXCPU (which ends the process) once this call has used `seconds`
    more CPU than the process had so far: RLIMIT_CPU counts the process's lifetime."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = math.ceil(usage.ru_utime + usage.ru_stime)
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = spent + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _apply_limits(limits: WorkerLimits) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The parent ends workers through their pipe; a terminal's Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _answer(conn: Connection, value: Any) -> None:
    if isinstance(value, np.ndarray):
        contiguous = np.ascontiguousarray(value)
        conn.send(("array", contiguous.shape, contiguous.dtype.str))
        conn.send_bytes(contiguous.data.cast("B"))
    else:
        conn.send(("ok", value))


def serve(conn: Connection, limits: WorkerLimits) -> None:
    """Answer calls until the pipe closes; exit after a MemoryError (the heap may be torn)."""
    _apply_limits(limits)
    conn.send(("ready",))  # imports done: the parent's call timeouts start from here
    lease: int | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        lease_id, function, args = message
        if lease_id != lease:
            _reset_session()
            lease = lease_id
        _limit_cpu(limits.cpu_seconds)
        try:
            _answer(conn, function(*args))
        except APIError as exc:
            conn.send(("error", exc.status, exc.code, exc.message, exc.details))
        except MemoryError:
            conn.send(("memory",))
            return
        except Exception as exc:
            logger.exception("sandboxed %s failed", getattr(function, "__name__", function))
            conn.send(("crash", type(exc).__name__))


def main() -> None:
    fd, memory_bytes, cpu_seconds = (int(arg) for arg in sys.argv[1:4])
    logging.basicConfig(level=logging.WARNING, format="sandbox worker: %(levelname)s %(message)s")
    for module in PRELOAD:
        importlib.import_module(module)
    serve(Connection(fd), WorkerLimits(memory_bytes, cpu_seconds))
