"""Load test: mixed traffic at about twice the machine's capacity against a real service.

    python -m tools.loadtest [--users N] [--seconds 60] [--work-dir DIR]

Prepares a data dir (all-MiniLM-L6-v2 from its PyPI wheel, the tiny test BLIP), starts
`homelab-ai serve` on a free 127.0.0.1 port with a loopback page to crawl, warms every
endpoint up, then (without --users) measures capacity: short Locust runs at 2, 4, 8, ...
users until the 200s per second stop rising; the knee is the fewest users that reach 90% of
the best rate, and the run uses twice that. One headless Locust run of --seconds follows
while the frontend's memory is sampled; then SIGTERM, and the service must exit.

Exits 1 when any answer is not 200, 429 or 503 (a 500 above all), when the frontend's memory
still grows in the last third of the run, or when the service does not exit cleanly.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tools.loadtest import payloads
from tools.loadtest.locust_run import LocustResult, run_locust
from tools.loadtest.service import (
    MemorySampler,
    StopReport,
    loopback_page,
    prepare_data_dir,
    running_service,
    service_config,
    stop_service,
)

MIB = 1024 * 1024
# Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status
# says what ended it: -15 is a clean stop too.
CLEAN_EXITS = (0, -signal.SIGTERM)
PROBE_USERS = (2, 4, 8, 16, 32, 64, 128)
# A doubling of users that adds less than this much goodput means the machine is saturated:
# most of the added users only queue. (1.10 was too strict on this noisy 2-core box: goodput
# crept up 12% from 64 to 128 users while the median latency doubled.)
PLATEAU_GAIN = 1.25
KNEE_SHARE = 0.90


def warm_up(url: str, crawl_url: str) -> None:
    """One request per endpoint, one at a time: the models load and Chromium starts before
    anything is measured (first loads take seconds and are not what this test is about)."""
    for method, path, body in payloads.warm_up_requests(crawl_url):
        response = httpx.request(method, url + path, json=body, timeout=300)
        if response.status_code != 200:
            raise RuntimeError(f"warm-up {path}: HTTP {response.status_code} {response.text[:300]}")


def model_loads(url: str) -> dict[str, int]:
    """Loads per model so far, from the service's /metrics: a model that unloads for idleness
    in the middle of the run and loads again shows up here (and in the latencies)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    loads: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("model_load_duration_seconds_count{"):
            model = line.split('model="', 1)[1].split('"', 1)[0]
            loads[model] = int(float(line.rsplit(" ", 1)[1]))
    return loads


def find_capacity(url: str, crawl_url: str, work: Path, seconds: int) -> tuple[int, dict[int, int]]:
    """Users at the knee of goodput (200s/s) vs users, and the disallowed statuses the
    probes met (they count against the service as much as the main run's)."""
    probes: list[tuple[int, float]] = []
    disallowed: dict[int, int] = {}
    for users in PROBE_USERS:
        result = run_locust(url, users, users, seconds, work / f"probe_{users}", crawl_url)
        probes.append((users, result.goodput()))
        for status, count in result.disallowed().items():
            disallowed[status] = disallowed.get(status, 0) + count
        print(f"  probe {users:4d} users: {result.goodput():7.1f} 200s/s", flush=True)
        best = max(rate for _, rate in probes[:-1]) if len(probes) > 1 else 0.0
        if len(probes) > 1 and result.goodput() < best * PLATEAU_GAIN:
            break
    top = max(rate for _, rate in probes)
    knee = min(users for users, rate in probes if rate >= KNEE_SHARE * top)
    return knee, disallowed


def memory_verdict(
    sampler: MemorySampler, start: float, end: float, max_growth_mib: float
) -> tuple[list[str], bool]:
    """Lines describing the frontend's memory over the run, and whether it stayed bounded:
    the peak of the last third may not exceed the peak of the middle third by more than
    MAX_GROWTH_MIB (a plateau is fine; a climb that goes on to the end is not)."""
    samples = sampler.between(start, end)
    if len(samples) < 6:
        return ["memory: too few samples"], False
    third = (end - start) / 3
    middle = max(s[2] for s in samples if start + third <= s[0] < start + 2 * third)
    last = max(s[2] for s in samples if s[0] >= start + 2 * third)
    growth = (last - middle) / MIB
    pss = [s[2] for s in samples]
    rss = [s[1] for s in samples]
    tree = [s[3] for s in samples]
    lines = [
        f"frontend PSS MiB: start {pss[0] / MIB:.0f}, peak {max(pss) / MIB:.0f}, "
        f"end {pss[-1] / MIB:.0f} (RSS peak {max(rss) / MIB:.0f})",
        f"frontend PSS growth, last third vs middle third: {growth:+.1f} MiB "
        f"(limit {max_growth_mib:.0f})",
        f"whole service (frontend, Triton, stubs, Chromium) PSS MiB: start "
        f"{tree[0] / MIB:.0f}, peak {max(tree) / MIB:.0f}, end {tree[-1] / MIB:.0f}",
    ]
    return lines, growth <= max_growth_mib


def report(result: LocustResult, users: int) -> list[str]:
    total = result.total
    lines = [
        f"{users} users, {result.seconds} s: {total.requests} requests, "
        f"{total.requests_per_second:.1f} requests/s, {result.goodput():.1f} 200s/s",
        f"{'task':16} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}  statuses",
    ]
    for task in result.tasks:
        statuses = ", ".join(f"{s}: {n}" for s, n in task.statuses.items())
        p50 = "-" if math.isnan(task.p50_ms) else f"{task.p50_ms:.0f}"
        p95 = "-" if math.isnan(task.p95_ms) else f"{task.p95_ms:.0f}"
        lines.append(
            f"{task.name:16} {task.requests:8d} {task.requests_per_second:7.1f} "
            f"{p50:>8} {p95:>8}  {statuses}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, help="skip the capacity probes; run this many")
    parser.add_argument("--seconds", type=int, default=60, help="length of the run (<= 600)")
    parser.add_argument("--probe-seconds", type=int, default=10, help="length of each probe")
    parser.add_argument("--work-dir", type=Path, help="data dir and results (default: a temp dir)")
    parser.add_argument("--max-growth-mib", type=float, default=64.0)
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600 or not 1 <= args.probe_seconds <= 60:
        parser.error("--seconds must be 1..600 and --probe-seconds 1..60")

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="homelab-loadtest-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    print(f"work dir: {work}", flush=True)
    tiny = prepare_data_dir(data_dir)
    problems: list[str] = []
    with loopback_page() as crawl_url:
        config = service_config(tiny, "127.0.0.1")
        with running_service(work, data_dir, config) as service:
            print(f"service at {service.url} (pid {service.process.pid}), log {service.log}")
            sampler = MemorySampler(service.process.pid).start()
            warm_up(service.url, crawl_url)
            users = args.users
            if users is None:
                print("finding capacity (goodput vs users):", flush=True)
                knee, probe_errors = find_capacity(service.url, crawl_url, work, args.probe_seconds)
                if probe_errors:
                    problems.append(f"probes got statuses other than 200/429/503: {probe_errors}")
                users = 2 * knee
                print(f"throughput stops rising at ~{knee} users; running at {users}")
            print(f"main run: {users} users for {args.seconds} s", flush=True)
            loads_before = model_loads(service.url)
            started = time.monotonic()
            spawn_rate = max(1.0, users / 5)  # all users in within 5 s
            result = run_locust(
                service.url, users, spawn_rate, args.seconds, work / "main", crawl_url
            )
            ended = time.monotonic()
            loads_after = model_loads(service.url)
            time.sleep(3)  # one idle moment after the run, for the "end" figure
            sampler.stop()
            stop: StopReport = stop_service(service, 90)

    print("\n".join(["", *report(result, users)]))
    memory_lines, bounded = memory_verdict(sampler, started, ended + 3, args.max_growth_mib)
    print("\n".join(memory_lines))
    reloads = {m: n - loads_before.get(m, 0) for m, n in loads_after.items()}
    print(f"model loads during the run: {reloads}")
    print(f"SIGTERM: exit code {stop.exit_code} after {stop.seconds:.1f} s")
    if result.disallowed():
        problems.append(f"statuses other than 200/429/503: {result.disallowed()}")
    if not bounded:
        problems.append("frontend memory kept growing through the run")
    if stop.exit_code is None:
        problems.append("the service did not exit within 90 s of SIGTERM (killed)")
    elif stop.exit_code not in CLEAN_EXITS:
        problems.append(f"the service exited with {stop.exit_code} on SIGTERM")
    if stop.leftovers:
        problems.append(f"processes left after the service exited: {stop.leftovers}")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else f"{len(problems)} problem(s); service log: {service.log}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
