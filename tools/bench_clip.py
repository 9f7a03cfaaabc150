"""CLIP image embedding, side by side in one run: Immich's POST /predict and POST /api/embed
through the service and Triton at concurrency 1 and 8, against in-process ONNX Runtime at
batch 1 and 8 on the same files and the same preprocessing.

    python -m tools.bench_clip [--seconds 6] [--rounds 3] [--side 1440] [--threads N]

Random weights of ViT-B-32's shape (tools/build_clip_models.py --shape vit-b-32) are written
in Immich's ONNX layout and imported as immich-app/ViT-B-32__openai into a temporary data dir,
so /predict resolves Immich's own model name as for a real install. The images are JPEGs at
Immich's preview size (1440 px on the long side); every path decodes them, so decoding counts
on both sides. In-process means ImmichClip (the task's own code, ONNX Runtime with the
entry's threads) on the decoded pixels: the fastest this machine computes the same vectors.
Rounds alternate which side goes first, because the cores are shared with other work.
Targets: >= 0.9x of batch 1 at concurrency 1, >= 0.8x of batch 8 at concurrency 8.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml
from PIL import Image

from frontend.models.cache import import_model
from tools.benchlib import closed_loop, cpu_per_call, cpu_seconds, running_service

REPO = Path(__file__).resolve().parents[1]
HF_MODEL = "immich-app/ViT-B-32__openai"
MODEL_ID = "clip-vit-b-32"
ENTRIES = json.dumps({"clip": {"visual": {"modelName": "ViT-B-32__openai"}}})
TARGETS = {1: 0.9, 8: 0.8}


def photos(count: int, side: int) -> list[bytes]:
    """Smooth random photos (gradients plus noise: JPEG sizes like a photo's), 4:3."""
    rng = np.random.default_rng(0)
    height = side * 3 // 4
    y, x = np.mgrid[0:height, 0:side].astype(np.float32)
    files = []
    for _ in range(count):
        a, b, c = rng.uniform(0.002, 0.02, 3)
        base = np.stack([np.sin(x * a + y * b), np.cos(y * c), np.sin((x + y) * b)], axis=-1)
        noise = rng.normal(0, 12, (height, side, 3))
        pixels = np.clip(127 + 100 * base + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        files.append(buffer.getvalue())
    return files


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def in_process(clip: Any, files: list[bytes], batch: int, seconds: float) -> float:
    """Images/s of decode + preprocess + ONNX Runtime, `batch` images per run."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chosen = [files[(done + i) % len(files)] for i in range(batch)]
        clip.embed_images([decoded(data) for data in chosen])
        done += batch
    return done / (time.perf_counter() - start)


def predict_form(data: bytes) -> aiohttp.FormData:
    """Immich's body: `entries` as text, `image` a Blob (undici names it "blob", no type)."""
    form = aiohttp.FormData()
    form.add_field("entries", ENTRIES)
    form.add_field("image", data, filename="blob", content_type="application/octet-stream")
    return form


async def api_rate(
    url: str, route: str, files: list[bytes], clients: int, seconds: float
) -> tuple[float, int]:
    """(images/s, calls) through `route` ("predict" or "embed") with `clients` clients."""
    encoded = [base64.b64encode(data).decode() for data in files]
    async with aiohttp.ClientSession() as session:

        async def call(i: int) -> int:
            if route == "predict":
                request = session.post(f"{url}/predict", data=predict_form(files[i % len(files)]))
            else:
                body = {"model": MODEL_ID, "images": [encoded[i % len(files)]]}
                request = session.post(f"{url}/api/embed", json=body)
            async with request as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{route}: HTTP {response.status}")
            return 1

        result = await closed_loop(clients, seconds, call)
    return result.rate, result.calls


async def served_vector(url: str, data: bytes) -> np.ndarray:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/predict", data=predict_form(data)) as response,
    ):
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"/predict: HTTP {response.status}: {answer}")
    return np.array(json.loads(answer["clip"]), dtype=np.float32)


def shipped_entry() -> dict[str, Any]:
    """The ViT-B-32 entry as config.yaml ships it."""
    shipped = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    [entry] = [e for e in shipped["models"]["image_embedding"] if e["hf_model"] == HF_MODEL]
    return dict(entry)


def shipped_threads() -> int:
    """The ViT-B-32 entry's threads as config.yaml ships it."""
    return int(shipped_entry().get("threads", 1))


def build_model(work: Path, data_dir: Path) -> Path:
    import torch

    from tools.build_clip_models import VIT_B_32, save_random_clip_immich

    folder = work / "vit-b-32"
    torch.manual_seed(0)
    save_random_clip_immich(folder, VIT_B_32)
    return import_model(folder, HF_MODEL, data_dir / "models" / "hub").snapshot


def median_rates(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}


def run_round(index: int, groups: list[dict[str, Callable[[], float]]]) -> dict[str, float]:
    """Each group (in-process first, then the served ones) once; odd rounds reverse each group,
    so neither side always runs right after the other's load."""
    rates: dict[str, float] = {}
    for group in groups:
        names = list(group) if index % 2 == 0 else list(reversed(group))
        rates.update({name: group[name]() for name in names})
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", type=int, default=1440, help="long side of the JPEGs (px)")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (config.yaml's)")
    args = parser.parse_args()
    threads = args.threads or shipped_threads()

    from frontend.tasks.image_embedding_immich import ImmichClip

    work = Path(tempfile.mkdtemp(prefix="bench-clip-"))
    data_dir = work / "data"
    print(
        f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    started = time.perf_counter()
    snapshot = build_model(work, data_dir)
    print(f"random ViT-B-32 in Immich's layout built in {time.perf_counter() - started:.0f} s")
    files = photos(args.images, args.side)
    print(f"{len(files)} JPEGs {args.side} x {args.side * 3 // 4}, "
          f"{sum(map(len, files)) / len(files) / 1024:.0f} KiB each")  # fmt: skip
    clip = ImmichClip(snapshot, threads)
    entry = {
        "id": MODEL_ID,
        "hf_model": HF_MODEL,
        "default": True,
        "threads": threads,
        "max_batch_size": 16,
        "keep_alive_seconds": 3600,
        "max_queue_delay_us": shipped_entry().get("max_queue_delay_us", 2000),
    }
    models = {"image_embedding": [entry]}
    rounds: list[dict[str, float]] = []
    with running_service(work, data_dir, models, stub_code=REPO) as (url, service):
        expected = clip.embed_images([decoded(files[0])])[0]
        got = asyncio.run(served_vector(url, files[0]))  # also loads the model
        print(f"/predict vs in-process cosine: {float(got @ expected):.6f}")

        def served(route: str, clients: int) -> Callable[[], float]:
            return lambda: asyncio.run(api_rate(url, route, files, clients, args.seconds))[0]

        groups = [
            {
                "in-process batch 1": lambda: in_process(clip, files, 1, args.seconds),
                "/predict c=1": served("predict", 1),
                "/api/embed c=1": served("embed", 1),
            },
            {
                "in-process batch 8": lambda: in_process(clip, files, 8, args.seconds),
                "/predict c=8": served("predict", 8),
                "/api/embed c=8": served("embed", 8),
            },
        ]
        for index in range(args.rounds):
            rounds.append(run_round(index, groups))
            line = ", ".join(f"{k} {v:.1f}" for k, v in rounds[-1].items())
            print(f"round {index + 1}: {line} images/s")
        cpu = {}
        for route in ("predict", "embed"):
            before = cpu_seconds(service.pid)
            _, calls = asyncio.run(api_rate(url, route, files, 8, args.seconds))
            cpu[route] = cpu_per_call(before, cpu_seconds(service.pid), calls)
        own = resource.getrusage(resource.RUSAGE_SELF)
        started, rate = own.ru_utime + own.ru_stime, in_process(clip, files, 8, args.seconds)
        own = resource.getrusage(resource.RUSAGE_SELF)
        in_process_ms = (own.ru_utime + own.ru_stime - started) * 1000 / (rate * args.seconds)

    rates = median_rates(rounds)
    print(f"\nViT-B-32 shape (random weights), {threads} ORT thread(s); medians of {args.rounds}")
    for name, value in rates.items():
        print(f"  {name:28} {value:6.1f} images/s")
    for clients in (1, 8):
        reference = rates[f"in-process batch {clients}"]
        for route in ("/predict", "/api/embed"):
            ratio = rates[f"{route} c={clients}"] / reference
            target = TARGETS[clients]
            verdict = "ok" if ratio >= target else "MISSED"
            print(
                f"  {route} c={clients} / in-process batch {clients}: {ratio:.2f}"
                f"  (target >= {target}) {verdict}"
            )
    print("CPU ms per image (less sensitive to other load than the rates):")
    print(f"  in-process batch 8: {in_process_ms:.1f}")
    for route, text in cpu.items():
        print(f"  /{'predict' if route == 'predict' else 'api/embed'} c=8: {text}")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
