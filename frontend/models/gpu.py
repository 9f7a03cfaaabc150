"""GPU memory through NVML (nvidia-ml-py): per process and per device; harmless with no GPU.

Every function answers "no GPU" (False, 0, None) when the package, the driver or a device is
missing: an NVMLError (or any other failure of the library) never reaches the caller, so
callers on CPU-only hosts need no special case. NVML is initialised once per process, on
first use, and stays initialised (its queries then cost microseconds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {}  # "nvml": the initialised pynvml module, or None once it failed


def _nvml() -> Any | None:
    """The initialised pynvml module, or None (no package, no driver, or no device)."""
    with _lock:
        if "nvml" not in _state:
            _state["nvml"] = _init()
        return _state["nvml"]


def _init() -> Any | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError (no driver / library not found) and the like
        logger.debug("NVML unavailable: %s", exc)
        return None
    try:
        if int(pynvml.nvmlDeviceGetCount()) > 0:
            return pynvml
    except Exception as exc:
        logger.debug("NVML device count failed: %s", exc)
    _shutdown(pynvml)
    return None


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception as exc:
        logger.debug("NVML shutdown failed: %s", exc)


def reset() -> None:
    """Forget the NVML state (shut it down): the next query initialises it again."""
    with _lock:
        nvml = _state.pop("nvml", None)
    if nvml is not None:
        _shutdown(nvml)


def _handles(nvml: Any) -> list[Any]:
    return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(int(nvml.nvmlDeviceGetCount()))]


def gpu_available() -> bool:
    """True when NVML answers and sees at least one GPU."""
    return _nvml() is not None


def process_gpu_memory(pids: Iterable[int]) -> int:
    """Bytes of GPU memory the given processes use, summed over every device (0 without one).

    From nvmlDeviceGetComputeRunningProcesses; a device that cannot tell (NVML error, or a
    process whose usage NVML does not know) contributes nothing.
    """
    wanted = {int(pid) for pid in pids}
    nvml = _nvml()
    if nvml is None or not wanted:
        return 0
    try:
        handles = _handles(nvml)
    except Exception as exc:
        logger.debug("NVML device query failed: %s", exc)
        return 0
    total = 0
    for handle in handles:
        try:
            processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except Exception as exc:
            logger.debug("NVML process query failed: %s", exc)
            continue
        for process in processes:
            used = getattr(process, "usedGpuMemory", None)
            if int(process.pid) in wanted and used:
                total += int(used)
    return total


def _memory_sum(field: str) -> int | None:
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        return sum(int(getattr(nvml.nvmlDeviceGetMemoryInfo(h), field)) for h in _handles(nvml))
    except Exception as exc:
        logger.debug("NVML memory query failed: %s", exc)
        return None


def gpu_memory_used() -> int | None:
    """Bytes in use on all devices, by any process; None without a GPU."""
    return _memory_sum("used")


def gpu_memory_total() -> int | None:
    """Bytes of memory of all devices together; None without a GPU."""
    return _memory_sum("total")
