"""--embed-only: the embedding model on the GPU, several instance layouts measured side by side.

For each layout (Triton instances of the same fp16 MiniLM on one GPU) and in the same
interleaved rounds as the in-process model at batch 16 and 64:
  direct     16 and 64 gRPC clients of one sentence each, spread over load processes (what
             a power user calling Triton sends);
  coalesced  16 and 64 callers of one sentence each in ONE process whose calls go through
             frontend.triton.coalesce (what the service's frontend sends Triton for the same
             load: at most `depth` requests in flight, the rest merged), depth = instances and
             2 x instances.
GPU memory (NVML) is read before the first load, with every layout loaded, and after
unloading them all: it must come back to the baseline.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from frontend.core.config import Settings, load_settings
from frontend.models.gpu import gpu_memory_used, process_gpu_memory
from frontend.models.stubs import stub_pids
from frontend.triton.codecs import fp32_matrix, texts_input
from frontend.triton.embedded import EmbeddedTriton
from frontend.triton.gateway import TritonGateway
from tools.benchlib import closed_loop
from tools.gpu_check.common import MIB, ROOT, SENTENCES, Report, mib
from tools.gpu_check.memory import instance_groups, load_all, stub_log_lines, wait_stubs_gone
from tools.gpu_check.speed import fp16_evidence, in_process_rate, multi_process_load, worker_ready


def layout_id(instances: int, first: int) -> str:
    return "minilm" if instances == first else f"minilm-x{instances}"


def embed_settings(
    data_dir: Path, minilm: str, layouts: list[int], max_batch: int, device: str = "gpu"
) -> Settings:
    """config.yaml's minilm entry on the GPU in fp16, once per layout (instances)."""
    base = load_settings(ROOT / "config.yaml")
    entry = next(e for e in base.models.entries("text_embedding") if e.id == "minilm")  # type: ignore[arg-type]
    common = entry.model_dump() | {"hf_model": minilm, "device": device, "fp16": True}
    common |= {"enabled": True, "max_batch_size": max_batch}
    models: dict[str, list[dict[str, Any]]] = {"image_caption": [], "ocr": [], "rerank": []}
    models["text_embedding"] = [
        common | {"id": layout_id(n, layouts[0]), "instances": n, "default": n == layouts[0]}
        for n in layouts
    ]
    return load_settings(ROOT / "config.yaml", data_dir=str(data_dir), models=models)


def coalesced_process(
    url: str, model: str, clients: int, depth: int, max_items: int, start_at: float, seconds: float
) -> tuple[int, int, float]:
    """One frontend-like process: `clients` one-sentence callers sharing Triton requests
    through a Coalescer. (sentences done, Triton requests sent, seconds)."""
    from frontend.triton.coalesce import Coalescer

    async def run() -> tuple[int, int, float]:
        gateway = TritonGateway(url)
        coalescer: Coalescer[str] = Coalescer()
        sent = 0

        async def send(batch: list[str]) -> tuple[Any, ...]:
            nonlocal sent
            sent += 1
            result = await gateway.infer(model, [texts_input(batch)], ["EMBEDDING"])
            return (fp32_matrix(result, "EMBEDDING", len(batch)),)

        async def call(i: int) -> int:
            text = SENTENCES[i % len(SENTENCES)]
            await coalescer.run(model, [text], send, depth, max_items)
            return 1

        await gateway.infer(model, [texts_input(["warm up"])], ["EMBEDDING"])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        sent = 0
        result = await closed_loop(clients, seconds, call)
        await gateway.close()
        return result.items, sent, result.seconds

    return asyncio.run(run())


def coalesced_load(
    pool: ProcessPoolExecutor,
    url: str,
    model: str,
    clients: int,
    depth: int,
    max_items: int,
    seconds: float,
) -> tuple[float, float]:
    """(sentences/s, mean texts per Triton request) of one coalescing process."""
    future = pool.submit(
        coalesced_process, url, model, clients, depth, max_items, time.time() + 2.0, seconds
    )
    items, sent, spent = future.result()
    return items / max(spent, 1e-9), items / max(1, sent)


async def phase_embed_memory(
    gateway: TritonGateway,
    triton: EmbeddedTriton,
    repository: Path,
    names: list[str],
    report: Report,
) -> int | None:
    """Loads every layout; checks KIND_GPU, fp16 and the stubs' GPU memory. Returns the GPU
    memory in use before the first load (the baseline for the unload check)."""
    log = triton.work_dir / "tritonserver.log"
    log_start = log.stat().st_size
    await asyncio.sleep(1.0)
    before = gpu_memory_used()
    report.figure("memory_before_load", before, f"GPU memory before load: {mib(before)}")
    seconds = await load_all(gateway, names)
    report.figure("load_seconds", seconds, f"loaded {', '.join(names)} in {seconds:.1f} s")
    for name in names:
        result = await gateway.infer(name, [texts_input(["warm up", "the GPU"])], ["EMBEDDING"])
        fp32_matrix(result, "EMBEDDING", 2)
    loaded = gpu_memory_used()
    report.figure("memory_loaded", loaded, f"GPU memory, all layouts loaded: {mib(loaded)}")
    for name in names:
        kinds, _ = await instance_groups(gateway, name)
        pids = stub_pids(repository, name)
        held = process_gpu_memory(pids)
        lines = stub_log_lines(log, name, log_start)
        report.check(
            f"{name} on the GPU in fp16",
            bool(kinds)
            and all(k == "KIND_GPU" for k in kinds)
            and held > 0
            and bool(lines)
            and all("on cuda:" in ln and "float16" in ln for ln in lines),
            f"{len(pids)} stubs holding {mib(held)} (NVML); kinds {kinds}; "
            + (lines[0][lines[0].index(f"{name}: ") :] if lines else "no log line"),
        )
    return before


async def phase_embed_unload(
    gateway: TritonGateway,
    repository: Path,
    names: list[str],
    before: int | None,
    report: Report,
) -> None:
    for name in names:
        await gateway.unload(name)
    gone = await wait_stubs_gone(repository, names, timeout=120)
    await asyncio.sleep(0.5)
    after = gpu_memory_used()
    # This process's own CUDA context and in-process models (the speed phase) are not the
    # service's: NVML's reading for its PID is left out of the comparison.
    own = process_gpu_memory([os.getpid()])
    report.figure("memory_after_unload", after, f"GPU memory after unload: {mib(after)}")
    report.figure("check_process_gpu", own, f"  of which this check's own process: {mib(own)}")
    report.figure("unload_seconds", gone, f"stub processes gone {gone:.1f} s after the unloads")
    if before is not None and after is not None:
        report.check(
            "unload gives the GPU memory back",
            after - own - before <= 64 * MIB,
            f"before load {mib(before)}, after unloading every layout {mib(after - own)} "
            f"(without this process's {mib(own)})",
        )


async def phase_embed_speed(
    gateway: TritonGateway,
    minilm: str,
    layouts: list[int],
    max_batch: int,
    seconds: float,
    rounds: int,
    procs: int,
    report: Report,
    in_process: Any = None,
) -> None:
    """`in_process`: the model to compare with (default: fp16 on cuda:0, after checking that
    Triton's vectors are fp16 ones)."""
    half = in_process or await fp16_evidence(gateway, minilm, report)
    names = {n: layout_id(n, layouts[0]) for n in layouts}
    results: dict[str, list[float]] = {}
    merged: dict[str, list[float]] = {}
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=procs, mp_context=context) as pool:
        print(f"  load processes: {sorted(set(pool.map(worker_ready, range(procs))))}")
        for round_ in range(rounds):
            for batch in (16, 64):
                rate = in_process_rate(half, batch, seconds)
                results.setdefault(f"in-process batch {batch}", []).append(rate)
            for n, name in names.items():
                for clients in (16, 64):
                    rate = multi_process_load(pool, procs, gateway.url, clients, seconds, name)
                    results.setdefault(f"{n} inst: direct {clients}", []).append(rate)
                for clients, depth in ((16, n), (64, n), (64, 2 * n)):
                    key = f"{n} inst: coalesced {clients} depth {depth}"
                    rate, texts = coalesced_load(
                        pool, gateway.url, name, clients, depth, max_batch, seconds
                    )
                    results.setdefault(key, []).append(rate)
                    merged.setdefault(key, []).append(texts)
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()),
                flush=True,
            )
    median = {name: statistics.median(values) for name, values in results.items()}
    report.figures["embeddings_per_second"] = median
    ceiling = {16: median["in-process batch 16"], 64: median["in-process batch 64"]}
    ratios: dict[str, float] = {}
    print(f"embeddings/s, medians of {rounds} rounds of {seconds:.0f} s:", flush=True)
    for key, value in median.items():
        clients = 64 if " 64" in key else 16
        line = f"  {key:36} {value:9,.0f}"
        if not key.startswith("in-process"):
            ratios[key] = value / ceiling[clients]
            line += f"   {ratios[key]:.2f} of in-process batch {clients}"
        if key in merged:
            line += f"   ({statistics.median(merged[key]):.1f} texts per Triton request)"
        print(line, flush=True)
    report.figures["ratio_vs_in_process"] = ratios
    for n, name in names.items():
        stats = await gateway.statistics(name)
        executions = max(1, int(stats.get("execution_count", 1)))
        formed = int(stats.get("inference_count", 0)) / executions
        report.figures[f"mean_triton_batch_{n}"] = formed
        print(f"  {n} instance(s): mean batch Triton formed {formed:.1f}", flush=True)
    for mode in ("direct", "coalesced"):
        best = {
            clients: max(
                (v for k, v in ratios.items() if mode in k and f" {clients}" in k), default=0.0
            )
            for clients in (16, 64)
        }
        report.check(
            f"{mode}: >= 0.8 of in-process at 16 and 64 clients (best layout)",
            min(best.values()) >= 0.8,
            f"best ratios: 16 clients {best[16]:.2f}, 64 clients {best[64]:.2f}",
        )
