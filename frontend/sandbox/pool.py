"""The document sandbox: a small pool of worker processes that parse uploaded files, each
capped in address space, CPU time per call and wall time per call (config: documents). A
request leases a worker for its parsing and calls functions in it; a call that passes a limit
kills or ends that worker, the pool replaces it, and the request gets 413 DOCUMENT_TOO_COMPLEX
naming the limit. Requests beyond the pool wait (queue_timeout_seconds, then 503). One worker
serves one lease at a time, so a crash never touches another request.

Our own pool rather than ProcessPoolExecutor: a lease keeps its worker (and the PDF opened in
it) across calls, and a dead worker is replaced without breaking the calls in flight on the
others (BrokenProcessPool fails them all). Workers are plain `python -m` processes, not
multiprocessing's spawn or forkserver children: those re-import the parent's __main__ (the
whole service) in every worker."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from typing import Any, ParamSpec, TypeVar

import anyio
import numpy as np
from fastapi import FastAPI

from frontend.core.config import DocumentsSection
from frontend.core.errors import (
    NAMED_ERRORS,
    APIError,
    DocumentTooComplex,
    ResourceExhausted,
    Unavailable,
)
from frontend.sandbox.worker import WorkerLimits

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
_lease_ids = itertools.count(1)
START_SECONDS = 120  # for a worker's imports (1-5 s measured, on a busy 2-core box)


class SandboxFailure(RuntimeError):
    """A sandboxed call raised an unexpected exception (a bug, logged by the worker)."""


def _rebuild(status: int, code: str, message: str, details: dict[str, Any] | None) -> APIError:
    for named in NAMED_ERRORS:
        if named.status == status and named.code == code:
            return named(message, details)
    return APIError(status, code, message, details)


class _Worker:
    """One worker process and the parent's end of its pipe (blocking calls: run in threads)."""

    def __init__(self, limits: WorkerLimits) -> None:
        ours, theirs = socket.socketpair()
        # The worker imports what the service imports: the same sys.path (a checkout run
        # from its own directory, tests' paths).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-m", "frontend.sandbox", str(theirs.fileno())]
        command += [str(limits.memory_bytes), str(limits.cpu_seconds)]
        try:
            self.process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.pid = self.process.pid
        self.leases = 0
        self.broken = False

    def wait_ready(self) -> bool:
        """Whether the worker finished its imports within START_SECONDS (ended otherwise)."""
        try:
            if self.conn.poll(START_SECONDS) and self.conn.recv() == ("ready",):
                return True
        except (EOFError, OSError):
            pass
        self.stop(kill=True)
        return False

    def call(self, lease: int, function: Callable[..., Any], args: tuple[Any, ...],
             section: DocumentsSection) -> Any:  # fmt: skip
        try:
            self.conn.send((lease, function, args))
            if not self.conn.poll(section.timeout_seconds):
                self.stop(kill=True)
                raise _too_complex(section, "timeout_seconds", "s of wall time")
            reply = self.conn.recv()
            if reply[0] == "array":
                array = np.empty(reply[1], dtype=np.dtype(reply[2]))
                self.conn.recv_bytes_into(array.data.cast("B"))
                return array
        except (EOFError, OSError):
            raise self._died(section) from None
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise _rebuild(*reply[1:])
        if reply[0] == "memory":
            self.stop()
            raise _too_complex(section, "memory_mib", "MiB of memory")
        raise SandboxFailure(f"sandboxed {getattr(function, '__name__', '?')}: {reply[1]}")

    def _died(self, section: DocumentsSection) -> APIError:
        """The worker ended mid-call: a limit (SIGXCPU: CPU; SIGKILL: the kernel's hard limit)
        or a parser that crashed, most often on an allocation the address space refused."""
        try:
            code: int | None = self.process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self.stop(kill=True)
        logger.warning("document sandbox worker %s ended mid-call (exit %s)", self.pid, code)
        if code == -signal.SIGXCPU:
            return _too_complex(section, "cpu_seconds", "CPU seconds")
        return _too_complex(section, "memory_mib", "MiB of memory (or its parser crashed)")

    @property
    def alive(self) -> bool:
        return not self.broken and self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        """End the worker: close its socket (it exits), or SIGKILL it (it is ours)."""
        self.broken = True
        self.conn.close()
        if kill and self.process.poll() is None:
            self.process.kill()
        self.reap(5 if kill else 0)

    def reap(self, seconds: float) -> bool:
        """Whether it has exited (collected, so no zombie is left), waiting up to `seconds`."""
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


def _too_complex(section: DocumentsSection, key: str, unit: str) -> DocumentTooComplex:
    value = getattr(section, key)
    return DocumentTooComplex(
        f"document too large or too complex: reading it needs more than {value:g} {unit} "
        f"(documents.{key})",
        {"limit": f"documents.{key}", "value": value},
    )


class Lease:
    """A worker held by one request: its calls run one at a time, in order."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.id = next(_lease_ids)
        self.worker: _Worker | None = None
        self.failed: APIError | None = None
        self._turn = asyncio.Lock()

    async def call(self, function: Callable[P, T], *args: P.args, **_: P.kwargs) -> T:
        """`function(*args)` in the worker (a module-level function, passed by name)."""
        async with self._turn:
            if self.failed is not None:  # the worker, and what this lease kept in it, is gone
                raise self.failed
            if self.worker is None:
                self.worker = await anyio.to_thread.run_sync(self.sandbox.take)
            try:
                result: T = await anyio.to_thread.run_sync(
                    self.worker.call, self.id, function, args, self.sandbox.section
                )
            except DocumentTooComplex as exc:
                self.failed = exc
                raise
            return result


class Sandbox:
    """The pool; `lease()` gives a request a worker (started on first use)."""

    def __init__(self, section: DocumentsSection) -> None:
        self.section = section
        self.size = section.pool_size
        self.limits = WorkerLimits(section.memory_mib * 2**20, section.cpu_seconds)
        self.started = 0  # worker processes started so far (tests, logs)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        self._retired: list[_Worker] = []  # ended, not yet collected

    def take(self) -> _Worker:
        """An idle worker, or a new one (blocking: the fork server may be starting)."""
        with self._lock:
            self._retired = [w for w in self._retired if not w.reap(0)]
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                self._all.discard(worker)
        try:
            worker = _Worker(self.limits)
        except OSError as exc:
            logger.error("cannot start a document sandbox worker: %s", exc)
            raise Unavailable("the document sandbox cannot start a worker process") from None
        if not worker.wait_ready():
            logger.error("a document sandbox worker did not start (exit %s)", worker.process.poll())
            raise Unavailable("the document sandbox cannot start a worker process")
        with self._lock:
            self._all.add(worker)
            self.started += 1
        return worker

    def give_back(self, worker: _Worker) -> None:
        worker.leases += 1
        with self._lock:
            if worker.alive and worker.leases < self.section.max_tasks_per_worker:
                self._idle.append(worker)
                return
            self._all.discard(worker)
            self._retired.append(worker)
        worker.stop()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        slots = self._slots
        try:
            async with asyncio.timeout(self.section.queue_timeout_seconds):
                await slots.acquire()
        except TimeoutError:
            raise ResourceExhausted(
                f"all {self.size} document workers (documents.workers) stayed busy for "
                f"{self.section.queue_timeout_seconds:g} s; retry shortly"
            ) from None
        lease = Lease(self)
        try:
            yield lease
        finally:
            if lease.worker is not None:
                self.give_back(lease.worker)
            slots.release()

    def close(self) -> None:
        """End every worker (blocking, a few seconds at most)."""
        with self._lock:
            workers = [*self._all, *self._retired]
            self._all, self._idle, self._retired = set(), [], []
        for worker in workers:
            worker.stop()
        for worker in workers:
            if not worker.reap(2):
                worker.stop(kill=True)


def sandbox_of(app: FastAPI) -> Sandbox:
    """The app's sandbox, made on first use (its workers start when first leased)."""
    sandbox: Sandbox | None = getattr(app.state, "sandbox", None)
    if sandbox is None:
        sandbox = Sandbox(app.state.settings.documents)
        app.state.sandbox = sandbox
    return sandbox


async def close_sandbox(app: FastAPI) -> None:
    sandbox: Sandbox | None = getattr(app.state, "sandbox", None)
    if sandbox is not None:
        app.state.sandbox = None
        await anyio.to_thread.run_sync(sandbox.close)
