"""Functions the sandbox tests run in its workers (importable there: module-level, by name)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from frontend.core.errors import InvalidRequest
from frontend.sandbox.worker import session


def pid() -> int:
    return os.getpid()


def burn_cpu() -> None:
    while True:  # ended by RLIMIT_CPU
        sum(range(10_000))


def allocate(megabytes: int) -> int:
    blocks = [bytearray(2**20) for _ in range(megabytes)]  # MemoryError past RLIMIT_AS
    return len(blocks)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def refuse() -> None:
    raise InvalidRequest("not this file", {"page": 3})


def fail() -> None:
    raise KeyError("a bug")


def gradient(height: int, width: int) -> np.ndarray:
    return np.arange(height * width * 3, dtype=np.uint32).reshape(height, width, 3).astype(np.uint8)


def remember(value: str) -> None:
    session()["value"] = value


def recall() -> str | None:
    found: str | None = session().get("value")
    return found
