"""Job overhead: a 256-text embed as a job against the same embed called synchronously.

Starts `homelab-ai serve` (embedded Triton, all-MiniLM-L6-v2, jobs on SQLite in the data dir,
default worker settings), then alternates, one request at a time:
  sync   POST /api/embed with 256 texts, the time to the answer
  job    POST /api/embed with `Prefer: respond-async`, then GET /api/jobs/{id}?wait=60 (the
         long poll answers when the job has finished; or, with --poll-ms, a GET every
         --poll-ms): the time from the POST to the result in hand
and prints the p50 of each, the overhead (job - sync) in ms and %, and checks that the job's
vectors equal the synchronous ones.

    python -m tools.bench_jobs [--rounds 10] [--poll-ms 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from tools.bench_embed import MINILM, prepare_data_dir
from tools.benchlib import running_service

TEXTS = [f"The quick brown fox number {i} jumps over the lazy dog." for i in range(256)]


def sync_call(http: httpx.Client) -> tuple[float, list[list[float]]]:
    started = time.perf_counter()
    response = http.post("/api/embed", json={"texts": TEXTS})
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["embeddings"]


def job_call(
    http: httpx.Client, poll: float, server: dict[str, list[float]] | None = None
) -> tuple[float, list[list[float]]]:
    started = time.perf_counter()
    created = http.post("/api/embed", json={"texts": TEXTS}, headers={"Prefer": "respond-async"})
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    params = {"wait": 60} if poll == 0 else {}
    while True:
        job = http.get(location, params=params).json()
        if job["status"] == "succeeded":
            elapsed = time.perf_counter() - started
            if server is not None:
                for name in ("queued_ms", "run_ms"):
                    server.setdefault(name, []).append(job["timings"][name])
            return elapsed, job["result"]["embeddings"]
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {job['status']}: {job.get('error')}")
        time.sleep(poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll-ms", type=float, default=0, help="0: long poll (?wait=60)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        work, data = Path(tmp) / "work", Path(tmp) / "data"
        prepare_data_dir(data)
        models = {"text_embedding": [{"id": "minilm", "hf_model": MINILM, "default": True}]}
        extra = {"limits": {"max_texts_per_request": 256}}
        with (
            running_service(work, data, models, extra) as (url, _),
            httpx.Client(base_url=url, timeout=300) as http,
        ):
            sync_call(http)  # loads the model
            job_call(http, args.poll_ms / 1000)  # and the job path (store, worker threads)
            times: dict[str, list[float]] = {"sync": [], "job": []}
            server: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                seconds, expected = sync_call(http)
                times["sync"].append(seconds)
                seconds, got = job_call(http, args.poll_ms / 1000, server)
                times["job"].append(seconds)
                np.testing.assert_allclose(got, expected, atol=1e-6)
    sync = statistics.median(times["sync"]) * 1000
    job = statistics.median(times["job"]) * 1000
    how = f"a GET every {args.poll_ms:g} ms" if args.poll_ms else "long poll (?wait=60)"
    print(f"256-text embed, {args.rounds} rounds, job result by {how}")
    print(f"  sync  POST /api/embed          p50 {sync:8.1f} ms")
    print(f"  job   POST + GET to result     p50 {job:8.1f} ms")
    print(f"  overhead                            {job - sync:8.1f} ms ({(job / sync - 1):+.1%})")
    queued, run = (statistics.median(server[k]) for k in ("queued_ms", "run_ms"))
    print(f"  of which, as the job records it: queued {queued:.1f} ms, run {run:.1f} ms")
    print("  results: job vectors equal the synchronous ones (atol 1e-6)")


if __name__ == "__main__":
    main()
