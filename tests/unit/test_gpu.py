"""NVML helper: answers "no GPU" without a driver, and sums what NVML reports when there is one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from frontend.models import gpu

GIB = 1024**3


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """The part of pynvml that gpu.py uses, with devices and processes given by the test."""

    NVMLError = FakeNVMLError

    def __init__(
        self,
        devices: list[dict[str, Any]] | None = None,
        init_error: bool = False,
        failing_process_query: set[int] | None = None,
    ) -> None:
        self.devices = devices or []
        self.init_error = init_error
        self.failing_process_query = failing_process_query or set()
        self.inits = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise FakeNVMLError("NVML Shared Library Not Found")
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        device = self.devices[handle]
        return SimpleNamespace(total=device["total"], used=device["used"])

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        if handle in self.failing_process_query:
            raise FakeNVMLError("Not Supported")
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=used)
            for pid, used in self.devices[handle]["processes"].items()
        ]


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    gpu.reset()
    yield
    gpu.reset()


def install(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", module)


TWO_GPUS = [
    {"total": 80 * GIB, "used": 3 * GIB, "processes": {101: 1 * GIB, 102: 512, 900: 2 * GIB}},
    {"total": 40 * GIB, "used": 1 * GIB, "processes": {101: 256, 103: None}},
]


def test_no_driver_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml(devices=TWO_GPUS, init_error=True)
    install(monkeypatch, fake)

    assert gpu.gpu_available() is False
    assert gpu.process_gpu_memory([101, 102]) == 0
    assert gpu.gpu_memory_used() is None
    assert gpu.gpu_memory_total() is None
    assert fake.inits == 0


def test_missing_package_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, None)  # `import pynvml` raises ImportError

    assert gpu.gpu_available() is False
    assert gpu.process_gpu_memory([1]) == 0
    assert gpu.gpu_memory_used() is None
    assert gpu.gpu_memory_total() is None


def test_driver_without_devices_is_no_gpu_and_shuts_nvml_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeNvml(devices=[])
    install(monkeypatch, fake)

    assert gpu.gpu_available() is False
    assert gpu.gpu_memory_used() is None
    assert gpu.process_gpu_memory([1]) == 0
    assert (fake.inits, fake.shutdowns) == (1, 1)


def test_sums_memory_over_devices_and_only_the_given_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeNvml(devices=TWO_GPUS)
    install(monkeypatch, fake)

    assert gpu.gpu_available() is True
    assert gpu.gpu_memory_total() == 120 * GIB
    assert gpu.gpu_memory_used() == 4 * GIB
    # 101 runs on both devices; 900 is someone else's; 103's usage is unknown to NVML (None)
    assert gpu.process_gpu_memory([101, 102]) == 1 * GIB + 512 + 256
    assert gpu.process_gpu_memory(iter([103])) == 0
    assert gpu.process_gpu_memory([]) == 0
    assert gpu.process_gpu_memory([4242]) == 0
    assert fake.inits == 1  # initialised once, then reused


def test_a_device_that_cannot_list_processes_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml(devices=TWO_GPUS, failing_process_query={0}))

    assert gpu.process_gpu_memory([101, 102]) == 256


def test_nvml_errors_after_init_never_reach_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml(devices=TWO_GPUS)
    install(monkeypatch, fake)
    assert gpu.gpu_available() is True

    def lost(*args: object) -> None:
        raise FakeNVMLError("GPU is lost")

    monkeypatch.setattr(fake, "nvmlDeviceGetMemoryInfo", lost)
    monkeypatch.setattr(fake, "nvmlDeviceGetCount", lost)

    assert gpu.gpu_memory_used() is None
    assert gpu.gpu_memory_total() is None
    assert gpu.process_gpu_memory([101]) == 0


def test_reset_shuts_nvml_down_and_the_next_query_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeNvml(devices=TWO_GPUS)
    install(monkeypatch, fake)
    assert gpu.gpu_available() is True

    gpu.reset()

    assert fake.shutdowns == 1
    assert gpu.gpu_available() is True
    assert fake.inits == 2


def test_the_real_library_on_this_host_is_consistent() -> None:
    """On a host without an NVIDIA driver (CI, dev machines) this is the graceful path."""
    available = gpu.gpu_available()
    used, total = gpu.gpu_memory_used(), gpu.gpu_memory_total()
    if not available:
        assert (used, total) == (None, None)
        assert gpu.process_gpu_memory([1, 2, 3]) == 0
    else:
        assert total is not None and used is not None
        assert 0 < used <= total
