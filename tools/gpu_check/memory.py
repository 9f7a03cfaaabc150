"""Phases 1 and 2: the models run on the GPU in fp16, unloading gives the memory back, and the
service's LRU policy evicts under resources.max_gpu_memory_gb."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import numpy as np

from frontend.core.config import Settings
from frontend.models.gpu import gpu_memory_used, process_gpu_memory
from frontend.models.stubs import stub_pids
from frontend.triton.codecs import fp32_matrix, image_input, strings, texts_input
from frontend.triton.embedded import EmbeddedTriton
from frontend.triton.gateway import TritonGateway
from tools.gpu_check.common import MIB, PROBE, Report, mib, test_images


async def instance_groups(gateway: TritonGateway, name: str) -> tuple[list[str], dict[str, str]]:
    """(instance group kinds, string parameters) from Triton's own model config."""
    answer = await gateway.replicas[0].client.get_model_config(name, as_json=True)
    config = answer.get("config", answer)
    kinds = [str(group.get("kind")) for group in config.get("instance_group", [])]
    params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
    return kinds, params


def stub_log_lines(log: Path, model_id: str, since: int) -> list[str]:
    """The line each instance's initialize() logs: "<id>: <hf_model> on <device> (...)"."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(model_id)}: \S+ on (cpu|cuda:\d+)")
    text = log.read_bytes()[since:].decode(errors="replace")
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


async def wait_stubs_gone(repository: Path, model_ids: list[str], timeout: float) -> float:
    start = time.perf_counter()
    while any(stub_pids(repository, m) for m in model_ids):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"stubs of {model_ids} still running after {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


async def load_all(gateway: TritonGateway, names: list[str]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(gateway.load(name) for name in names))
    return time.perf_counter() - start


async def first_answers(gateway: TritonGateway, images: list[np.ndarray]) -> dict[str, str]:
    vectors = fp32_matrix(
        await gateway.infer("minilm", [texts_input(PROBE)], ["EMBEDDING"]), "EMBEDDING", len(PROBE)
    )
    answers = {"minilm": f"{vectors.shape[0]} x {vectors.shape[1]} float32"}
    for name in ("blip-base", "tiny-blip"):
        result = await gateway.infer(name, [image_input(images[0])], ["CAPTION"])
        answers[name] = repr(strings(result, "CAPTION")[0][:60])
    return answers


async def phase_gpu_and_memory(
    gateway: TritonGateway,
    triton: EmbeddedTriton,
    repository: Path,
    blip_fp32_bytes: int,
    report: Report,
) -> None:
    names = ["minilm", "blip-base", "tiny-blip"]
    log = triton.work_dir / "tritonserver.log"
    log_start = log.stat().st_size
    images = test_images(1)
    await asyncio.sleep(1.0)
    before = gpu_memory_used()
    server = process_gpu_memory([triton.server_pid]) if triton.server_pid else 0
    report.figure("memory_before_load", before, f"GPU memory before load: {mib(before)}")
    report.figure("tritonserver_gpu", server, f"  of which tritonserver itself: {mib(server)}")

    seconds = await load_all(gateway, names)
    report.figure("load_seconds", seconds, f"loaded {', '.join(names)} in {seconds:.1f} s")
    loaded = gpu_memory_used()
    report.figure("memory_after_load", loaded, f"GPU memory after load: {mib(loaded)}")
    answers = await first_answers(gateway, images)
    after_infer = gpu_memory_used()
    report.figure(
        "memory_after_first_inference",
        after_infer,
        f"GPU memory after a first inference on each: {mib(after_infer)}",
    )
    per_stub: dict[str, int] = {}
    for name in names:
        kinds, params = await instance_groups(gateway, name)
        report.check(
            f"{name} instance group",
            bool(kinds) and all(k == "KIND_GPU" for k in kinds),
            f"Triton model config: instance_group kinds {kinds}, fp16={params.get('fp16')}",
        )
        pids = stub_pids(repository, name)
        held = process_gpu_memory(pids)
        per_stub[name] = held
        report.check(
            f"{name} stub holds GPU memory",
            bool(pids) and held > 0,
            f"stub pids {pids}: {mib(held)} on the GPU (NVML)",
        )
        lines = stub_log_lines(log, name, log_start)
        report.check(
            f"{name} stub runs torch on cuda in fp16",
            bool(lines) and all("on cuda:" in ln and "float16" in ln for ln in lines),
            " | ".join(ln[ln.index(f"{name}: ") :] for ln in lines) or "no log line",
        )
        print(f"    first answer of {name}: {answers[name]}", flush=True)
    report.figures["stub_gpu_memory"] = per_stub
    # tiny-blip's stub is a CUDA context + torch with next to no weights: what blip-base's
    # stub holds beyond it is mostly weights, which in fp32 would take their file's size.
    extra = per_stub["blip-base"] - per_stub["tiny-blip"]
    report.figures["blip_base_fp32_weights"] = blip_fp32_bytes
    report.check(
        "blip-base weights sit on the GPU in fp16",
        0 < extra < 0.75 * blip_fp32_bytes,
        f"its stub holds {mib(extra)} more than tiny-blip's; its fp32 weights are "
        f"{mib(blip_fp32_bytes)} (ratio {extra / blip_fp32_bytes:.2f}; fp16 weights: 0.5)",
    )

    for name in names:
        await gateway.unload(name)
    gone = await wait_stubs_gone(repository, names, timeout=120)
    await asyncio.sleep(0.5)
    after = gpu_memory_used()
    report.figure("memory_after_unload", after, f"GPU memory after unload: {mib(after)}")
    report.figure("unload_seconds", gone, f"stub processes gone {gone:.1f} s after the unloads")
    if before is not None and after is not None and after_infer is not None:
        released = after_infer - after
        report.figure("memory_released", released, f"released by the unload: {mib(released)}")
        report.check(
            "unload releases the GPU memory",
            after - before <= 64 * MIB and released > 0,
            f"before load {mib(before)}, loaded {mib(after_infer)}, after unload {mib(after)}",
        )


async def phase_gpu_lru(settings: Settings, gateway: TritonGateway, report: Report) -> None:
    """The service's own LRU policy under resources.max_gpu_memory_gb, footprints from NVML."""
    from frontend.models.lifecycle import Lifecycle
    from frontend.models.registry import ModelRegistry

    registry = ModelRegistry(settings, gateway, make_room=lambda e: policy.make_room(e))
    policy = Lifecycle(settings, registry)  # its make_room evicts before each load
    names = ["minilm", "blip-base", "tiny-blip"]
    entries = {name: registry.catalog.lookup(name) for name in names}
    sizes: dict[str, int] = {}
    try:
        for name, entry in entries.items():  # each model's real GPU footprint, alone
            assert entry is not None
            await registry.ensure_loaded(entry)
            sizes[name] = registry.footprint(name).gpu
            await registry.unload(entry)
        report.figure(
            "lru_gpu_footprints_mib",
            {n: v // MIB for n, v in sizes.items()},
            "GPU footprints (NVML, stub PIDs): "
            + ", ".join(f"{n} {mib(v)}" for n, v in sizes.items()),
        )
        budget = sizes["minilm"] + sizes["blip-base"] + sizes["tiny-blip"] // 2
        settings.resources.max_gpu_memory_gb = budget / 1024**3  # any two fit, not all three
        minilm, blip, tiny = (entries[n] for n in names)
        assert minilm is not None and blip is not None and tiny is not None
        await registry.ensure_loaded(minilm)
        await registry.ensure_loaded(blip)
        await registry.run(minilm, lambda: gateway.infer("minilm", [texts_input(["hi"])], []))
        await registry.ensure_loaded(tiny)  # must evict blip-base: least recently used
        loaded = {e.id for e in registry.loaded_entries()}
        held = sum(registry.footprint(n).gpu for n in loaded)
        left = len(stub_pids(registry.repository, "blip-base"))
        report.check(
            "gpu-lru-eviction",
            loaded == {"minilm", "tiny-blip"} and left == 0 and held <= budget,
            f"budget {mib(budget)}; loaded after the third load: {sorted(loaded)}, holding "
            f"{mib(held)}; blip-base stubs left: {left}",
        )
    finally:
        for entry in registry.loaded_entries():
            await registry.unload(entry)
