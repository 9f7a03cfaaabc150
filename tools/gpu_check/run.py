"""The GPU check's command line: prepare the models, start Triton, run the phases, report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import tools.gpu_check as gpu_check
from frontend.core.config import Settings
from frontend.models.cache import snapshot_path
from frontend.models.catalog import ModelCatalog
from frontend.models.gpu import gpu_available, gpu_memory_total
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, triton_environment
from frontend.triton.gateway import TritonGateway
from frontend.triton.repository import write_repository
from tools.gpu_check.common import RANDOM_BLIP, Report, mib
from tools.gpu_check.memory import phase_gpu_and_memory, phase_gpu_lru
from tools.gpu_check.models import gpu_settings, prepare_blip_base, prepare_minilm
from tools.gpu_check.speed import phase_speed


async def run_embed_checks(
    settings: Settings,
    minilm: str,
    args: argparse.Namespace,
    gateway: TritonGateway,
    triton: EmbeddedTriton,
    report: Report,
) -> None:
    """--embed-only: issue #14's GPU point (tools.gpu_check.embed)."""
    from tools.gpu_check.embed import (
        layout_id,
        phase_embed_memory,
        phase_embed_speed,
        phase_embed_unload,
    )

    repository = settings.triton_repository_dir.resolve()
    names = [layout_id(n, args.instances[0]) for n in args.instances]
    print("\n== embeddings on the GPU: layouts loaded ==", flush=True)
    before = await phase_embed_memory(gateway, triton, repository, names, report)
    if not args.skip_speed:
        print("\n== embedding speed: Triton layouts against in-process ==", flush=True)
        await phase_embed_speed(
            gateway,
            minilm,
            args.instances,
            args.max_batch,
            args.seconds,
            args.rounds,
            args.procs,
            report,
        )
    print("\n== unload ==", flush=True)
    await phase_embed_unload(gateway, repository, names, before, report)


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
        if args.embed_only:
            await run_embed_checks(settings, minilm, args, gateway, triton, report)
            return report
        print("\n== on the GPU, and memory back after unload ==", flush=True)
        blip = snapshot_path(settings.models_dir / "hub", RANDOM_BLIP)  # (not --embed-only)
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
    overview = gpu_check.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m tools.gpu_check",
        description=overview.splitlines()[0] if overview else None,
    )
    parser.add_argument("--data-dir", type=Path, help="kept between runs (default: temp dir)")
    parser.add_argument("--minilm-files", type=Path, help="MiniLM config + tokenizer files")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=4, help="load processes for 64 clients")
    parser.add_argument("--json", type=Path, help="write checks and figures here")
    parser.add_argument("--skip-speed", action="store_true", help="no throughput phase")
    parser.add_argument(
        "--embed-only",
        action="store_true",
        help="only the embedding model: memory, and speed of each --instances layout",
    )
    parser.add_argument(
        "--instances", type=int, nargs="+", default=[1, 2, 4], help="layouts (--embed-only)"
    )
    parser.add_argument("--max-batch", type=int, default=64, help="max_batch_size (--embed-only)")
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
    if args.embed_only:
        from tools.gpu_check.embed import embed_settings

        blip = ""
        settings = embed_settings(data_dir, minilm, args.instances, args.max_batch)
        print(f"model ready in {time.perf_counter() - start:.0f} s: {minilm} ({minilm_kind})")
    else:
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
