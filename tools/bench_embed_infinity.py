"""Infinity (michaelfeil/infinity), the peer tools/bench_embed.py measures beside the service:
started from an `infinity_emb` launcher in a virtualenv of its own, on the same local
snapshot, offline, on CPU, and its processes' CPU and memory read the same way as ours."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from frontend.models.stubs import process_tree, resident_bytes, rss_bytes
from frontend.triton.embedded import free_port
from tools.benchlib import cpu_seconds, wait_ready

INFINITY_NAME = "minilm"  # the model's name in Infinity's API (--served-model-name)


def infinity_model_dir(snapshot: Path, engine: str, work: Path) -> tuple[Path, str]:
    """(working directory, --model-id) for Infinity's `engine` on the local snapshot.

    torch: the snapshot itself. optimum: Infinity 0.0.78 finds no ONNX file in a folder
    without one (the snapshot ships none), and with optimum 2 it passes the ONNX file's path,
    where optimum matches a bare file name ("Could not find any ONNX files with target file
    name /abs/model.onnx, only found: [model.onnx]"): so a folder of links to the snapshot's
    files plus our ONNX export as model.onnx, run from inside it with --model-id "."."""
    if engine != "optimum":
        return work, str(snapshot)
    from frontend.tasks.onnx_export import ensure_exported

    folder = work / "infinity-optimum-model"
    folder.mkdir(parents=True, exist_ok=True)
    links = {entry.name: entry.resolve() for entry in snapshot.iterdir()}
    links["model.onnx"] = ensure_exported(snapshot).model.resolve()
    for name, target in links.items():
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(target, target_is_directory=target.is_dir())
    return folder, "."


@contextmanager
def running_infinity(
    launcher: Path, snapshot: Path, engine: str, work: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Infinity (`infinity_emb v2`) serving the snapshot with `engine` on CPU, batch 32, on a
    free loopback port, offline; yield (its /embeddings URL, process). Its own session, so
    its whole process group is stopped at the end."""
    cwd, model_id = infinity_model_dir(snapshot, engine, work)
    port = free_port()
    command = [str(launcher), "v2", "--model-id", model_id, "--served-model-name", INFINITY_NAME]
    command += ["--engine", engine, "--device", "cpu", "--batch-size", "32"]
    # mean pooling, as the model's 1_Pooling says: with "auto" the optimum engine pools CLS
    command += ["--pooling-method", "mean", "--no-vector-disk-cache", "--log-level", "warning"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"}
    env["INFINITY_ANONYMOUS_USAGE_STATS"] = "0"
    env["HF_HOME"] = str(work / "infinity-hf-home")  # its ONNX cache, not ~/.cache
    log = work / f"infinity-{engine}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        # Infinity loads and warms the model before it answers
        asyncio.run(wait_ready(url, 600, "/health", process, log))
        yield f"{url}/embeddings", process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def infinity_cpu(pid: int) -> dict[str, float]:
    """cpu_seconds for an Infinity service: one process tree, so all of it under 'infinity'."""
    parts = cpu_seconds(pid)
    own = parts.pop("load generator")
    return {"infinity": sum(parts.values()), "load generator": own}


def infinity_footprint_mib(pid: int) -> dict[str, float]:
    """PSS (MiB) of Infinity's process tree and its main process's RSS."""
    return {
        "infinity": resident_bytes(list(process_tree(pid))) / 2**20,
        "infinity RSS": rss_bytes(pid) / 2**20,
    }
