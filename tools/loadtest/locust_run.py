"""One headless Locust run in a subprocess, and its results read back from the CSV and the
locustfile's status counts. A subprocess keeps Locust's gevent monkey-patching out of the
runner, whose threads serve the crawl page and sample memory."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.loadtest.payloads import ALLOWED_STATUSES, CRAWL_URL_ENV, STATUS_FILE_ENV

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Users still waiting on a response when the time is up get this long to finish it, so the
# run ends with answers rather than cut connections (which would count as status 0).
STOP_TIMEOUT_SECONDS = 30


@dataclass
class TaskStats:
    name: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    statuses: dict[int, int]


@dataclass
class LocustResult:
    seconds: float
    tasks: list[TaskStats]  # one per task, then "Aggregated"
    log: str

    @property
    def total(self) -> TaskStats:
        return self.tasks[-1]

    def status_totals(self) -> dict[int, int]:
        return self.total.statuses

    def goodput(self) -> float:
        """200 answers per second: what the service really got done."""
        return self.status_totals().get(200, 0) / self.seconds

    def disallowed(self) -> dict[int, int]:
        return {s: n for s, n in self.status_totals().items() if s not in ALLOWED_STATUSES}


def run_locust(
    url: str, users: int, spawn_rate: float, seconds: int, out_prefix: Path, crawl_url: str
) -> LocustResult:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the load test only sends traffic to 127.0.0.1, not {url}")
    status_file = out_prefix.with_name(out_prefix.name + "_statuses.json")
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--host", url, "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s"]
    command += ["--stop-timeout", str(STOP_TIMEOUT_SECONDS), "--csv", str(out_prefix)]
    command += ["--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {**os.environ, CRAWL_URL_ENV: crawl_url, STATUS_FILE_ENV: str(status_file)}
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + STOP_TIMEOUT_SECONDS + 60,
        check=False,
    )
    log = done.stdout + done.stderr
    if done.returncode != 0 or not status_file.exists():
        raise RuntimeError(f"locust failed (exit {done.returncode}):\n{log[-3000:]}")
    return read_results(out_prefix, status_file, seconds, log)


def read_results(out_prefix: Path, status_file: Path, seconds: int, log: str) -> LocustResult:
    statuses: dict[str, dict[str, int]] = json.loads(status_file.read_text())
    tasks = []
    with open(f"{out_prefix}_stats.csv", newline="") as file:
        for row in csv.DictReader(file):
            name = row["Name"]
            counts: dict[int, int] = {}
            # The Aggregated row gets every task's statuses, the others their own.
            for task_name, task_counts in statuses.items():
                if name in ("Aggregated", task_name):
                    for status, n in task_counts.items():
                        counts[int(status)] = counts.get(int(status), 0) + n
            tasks.append(
                TaskStats(
                    name=name,
                    # From the status counts over the run's length: Locust's own rate
                    # divides by the stop timeout and the ramp-up too.
                    requests=sum(counts.values()),
                    requests_per_second=sum(counts.values()) / seconds,
                    p50_ms=_number(row["50%"]),
                    p95_ms=_number(row["95%"]),
                    statuses=dict(sorted(counts.items())),
                )
            )
    if not tasks or tasks[-1].name != "Aggregated":
        raise RuntimeError(f"no Aggregated row in {out_prefix}_stats.csv")
    return LocustResult(seconds, tasks, log)


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else float("nan")
