"""Phases 3 and 4: embeddings/s through Triton against the in-process model, and caption
latency for 8 images as one request, 8 concurrent ones and 8 one after another."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from frontend.core.config import ModelEntry
from frontend.triton.codecs import fp32_matrix, texts_input
from frontend.triton.gateway import TritonGateway
from frontend.vision.service import prepared
from tools.benchlib import closed_loop
from tools.gpu_check.common import PROBE, SENTENCES, Report, test_images
from tools.gpu_check.memory import load_all


async def triton_load(
    gateway: TritonGateway, clients: int, seconds: float, model: str = "minilm"
) -> float:
    """Sentences/s from `clients` concurrent requests of one sentence each."""

    async def call(i: int) -> int:
        text = SENTENCES[i % len(SENTENCES)]
        await gateway.infer(model, [texts_input([text])], ["EMBEDDING"])
        return 1

    return (await closed_loop(clients, seconds, call)).rate


def client_process(
    url: str, clients: int, start_at: float, seconds: float, model: str = "minilm"
) -> int:
    """One load process: waits for `start_at` (time.time()) then runs its clients."""

    async def run() -> int:
        gateway = TritonGateway(url)
        await gateway.infer(model, [texts_input(["warm up"])], ["EMBEDDING"])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        rate = await triton_load(gateway, clients, seconds, model)
        await gateway.close()
        return round(rate * seconds)

    return asyncio.run(run())


def worker_ready(_: int) -> int:
    time.sleep(0.5)  # long enough for every worker of the pool to get one
    return os.getpid()


def multi_process_load(
    pool: ProcessPoolExecutor,
    workers: int,
    url: str,
    clients: int,
    seconds: float,
    model: str = "minilm",
) -> float:
    """Sentences/s from `clients` clients spread over `workers` processes, started together."""
    start_at = time.time() + 2.0
    futures = [
        pool.submit(client_process, url, clients // workers, start_at, seconds, model)
        for _ in range(workers)
    ]
    return sum(f.result() for f in futures) / seconds


def in_process_rate(task: Any, batch: int, seconds: float) -> float:
    task.embed(SENTENCES[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        offset = done % (len(SENTENCES) - batch)
        task.embed(SENTENCES[offset : offset + batch])
        done += batch
    return done / (time.perf_counter() - start)


def fp16_share(values: np.ndarray) -> float:
    """Share of the values that are exact float16 numbers (all of them when computed in fp16)."""
    return float(np.mean(values.astype(np.float16).astype(np.float32) == values))


async def fp16_evidence(gateway: TritonGateway, hf_model: str, report: Report) -> Any:
    """Triton's vectors against in-process fp16 and fp32 runs; returns the fp16 in-process task.

    A model computing in fp16 returns float32 vectors whose every value is a float16 number
    (sentence-transformers normalises in the model's dtype); an fp32 model's are not.
    """
    from frontend.tasks.embedding import EmbeddingTask

    half = EmbeddingTask(hf_model, device="cuda:0", fp16=True)
    full = EmbeddingTask(hf_model, device="cuda:0", fp16=False)
    texts = PROBE + SENTENCES[:60]
    result = await gateway.infer("minilm", [texts_input(texts)], ["EMBEDDING"])
    served = fp32_matrix(result, "EMBEDDING", len(texts))
    in_half, in_full = half.embed(texts), full.embed(texts)
    shares = {name: fp16_share(v) for name, v in [("triton", served), ("fp32", in_full)]}
    report.figures["fp16_share"] = shares
    report.figures["max_abs_diff_vs_in_process"] = {
        "fp16": float(np.abs(served - in_half).max()),
        "fp32": float(np.abs(served - in_full).max()),
    }
    report.check(
        "Triton's embeddings are computed in fp16",
        shares["triton"] == 1.0 and shares["fp32"] < 0.5 and half.precision == "float16",
        f"{shares['triton']:.1%} of Triton's {served.size} output values are exact float16 "
        f"numbers (in-process fp32 run: {shares['fp32']:.1%}); max |Triton - in-process| "
        f"{report.figures['max_abs_diff_vs_in_process']['fp16']:.1e} vs fp16, "
        f"{report.figures['max_abs_diff_vs_in_process']['fp32']:.1e} vs fp32",
    )
    del full
    return half


async def caption_timing(
    gateway: TritonGateway, images: list[np.ndarray], rounds: int, model: str = "blip-base"
) -> dict[str, float]:
    """Median ms for 8 images: 8 concurrent 1-image requests, 8 one after another. The caption
    model is decoupled: each request is one gRPC stream, answered when its STATS arrive."""
    entry = ModelEntry(id=model, hf_model="Salesforce/blip-image-captioning-base")  # a label

    async def one(image: np.ndarray) -> None:
        inputs = prepared(entry, [image], [], {}, stream=False).inputs
        async for _ in gateway.stream(entry.id, inputs, ["CAPTION", "STATS"], "STATS"):
            pass

    async def concurrent() -> None:
        await asyncio.gather(*(one(image) for image in images))

    async def sequential() -> None:
        for image in images:
            await one(image)

    async def measure(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
        """(median ms, model executions per run)."""
        await run()  # warm-up
        before = await gateway.statistics(entry.id)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            await run()
            times.append((time.perf_counter() - start) * 1000)
        after = await gateway.statistics(entry.id)
        executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
        return statistics.median(times), executions / rounds

    timing: dict[str, float] = {}
    for name, run in [("concurrent", concurrent), ("sequential", sequential)]:
        timing[f"{name}_ms"], timing[f"{name}_executions"] = await measure(run)
    return timing


async def phase_speed(
    gateway: TritonGateway,
    minilm: str,
    seconds: float,
    rounds: int,
    procs: int,
    report: Report,
) -> None:
    await load_all(gateway, ["minilm", "blip-base"])
    half = await fp16_evidence(gateway, minilm, report)

    names = ["triton 16 clients", "triton 64 clients", f"triton 64 clients / {procs} procs"]
    names += ["in-process batch 16", "in-process batch 64"]
    results: dict[str, list[float]] = {name: [] for name in names}
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=procs, mp_context=context) as pool:
        print(f"  load processes: {sorted(set(pool.map(worker_ready, range(procs))))}")
        for round_ in range(rounds):
            results[names[0]].append(await triton_load(gateway, 16, seconds))
            results[names[1]].append(await triton_load(gateway, 64, seconds))
            results[names[2]].append(multi_process_load(pool, procs, gateway.url, 64, seconds))
            results[names[3]].append(in_process_rate(half, 16, seconds))
            results[names[4]].append(in_process_rate(half, 64, seconds))
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()),
                flush=True,
            )
    stats = await gateway.statistics("minilm")
    batch = int(stats.get("inference_count", 0)) / max(1, int(stats.get("execution_count", 1)))
    median = {name: statistics.median(values) for name, values in results.items()}
    report.figures["embeddings_per_second"] = median
    report.figures["mean_triton_batch"] = batch
    print(f"embeddings/s, medians of {rounds} rounds of {seconds:.0f} s:", flush=True)
    for name, value in median.items():
        print(f"  {name:32} {value:9,.0f}", flush=True)
    ratios = {
        "16": median[names[0]] / median[names[3]],
        "64": median[names[1]] / median[names[4]],
        f"64/{procs}procs": median[names[2]] / median[names[4]],
    }
    report.figures["ratio_triton_vs_in_process"] = ratios
    print(
        "  Triton / in-process at the same batch: "
        + ", ".join(f"{k} clients {v:.2f}" for k, v in ratios.items())
        + f"; mean batch Triton formed: {batch:.1f}",
        flush=True,
    )
    report.check(
        "embeddings served on the GPU",
        all(v > 0 for v in median.values()),
        f"{median[names[1]]:,.0f}/s with 64 clients",
    )

    timing = await caption_timing(gateway, test_images(8), rounds)
    report.figures["caption"] = timing
    print(
        "caption, BLIP-base shape in fp16, 30 new tokens, 8 images of 640x480 "
        f"(medians of {rounds}):",
        flush=True,
    )
    for name, label in [
        ("concurrent", "8 concurrent 1-image requests"),
        ("sequential", "8 requests one after another"),
    ]:
        print(
            f"  {label:32} {timing[name + '_ms']:7.0f} ms "
            f"({timing[name + '_executions']:.1f} model executions)",
            flush=True,
        )
    speedup = timing["sequential_ms"] / timing["concurrent_ms"]
    report.check(
        "8 concurrent captions are batched into fewer generates",
        timing["concurrent_executions"] < 8 and speedup > 1.0,
        f"{timing['concurrent_executions']:.1f} model executions for 8 concurrent requests, "
        f"{speedup:.1f}x faster than 8 sequential requests",
    )
