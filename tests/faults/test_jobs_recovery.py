"""Jobs survive a SIGKILL of the service, and several frontends and `homelab-ai worker`s share
them on one real Redis. Every process here is the test's own, signalled by pid; Triton is the
session's (external mode), so killing a frontend leaves no model process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from frontend.core.config import Settings
from frontend.triton.embedded import EmbeddedTriton, free_port
from tests.faults.conftest import own_frontend, wait_until
from tests.faults.test_redis_outage import RedisServer
from tests.integration.fixtures import ADMIN_KEY, MODELS
from tests.integration.test_jobs import wait_job

ROOT = Path(__file__).resolve().parents[2]
# ~250 tokens each: 256 of them keep the model busy for seconds, so the job is truly running
LONG_TEXTS = [
    f"part {i}: " + "the homelab queue survives a crash of the service " * 30 for i in range(256)
]
PREFER = {"Prefer": "respond-async"}


def _config(tmp: Path, triton: EmbeddedTriton, **jobs: Any) -> Path:
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "triton": {"url": triton.grpc_url, "admin_key": ADMIN_KEY},
                "models": {"text_embedding": [MODELS["text_embedding"][0]]},
                "limits": {"max_texts_per_request": 256, "max_text_chars": 4000},
                "jobs": {"lease_seconds": 2, **jobs},
            }
        )
    )
    return config


def _data(tmp: Path, data_dir: Path, name: str) -> Path:
    data = tmp / name
    if not data.exists():
        data.mkdir()
        (data / "models").symlink_to(data_dir / "models")
    return data


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m frontend.cli ARGS` from this checkout, killed by pid at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMELAB_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's `frontend`, not the installed one
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "frontend.cli", *args],
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_sigkill_with_a_running_and_queued_jobs_then_restart_finishes_every_job(
    tmp_path: Path, data_dir: Path, triton: EmbeddedTriton
) -> None:
    config = _config(tmp_path, triton, workers=1)
    data = _data(tmp_path, data_dir, "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--config", str(config), "--data-dir", str(data), "--port", str(port)]
    small = [{"texts": [f"queued job {i}", "second text"]} for i in range(3)]
    with process(serve, tmp_path / "serve.log") as first:
        assert wait_until(lambda: _ready(url), 90), "the service did not become ready"
        with httpx.Client(base_url=url, timeout=60) as http:
            running = http.post("/api/embed", json={"texts": LONG_TEXTS}, headers=PREFER)
            assert running.status_code == 202, running.text
            queued = [http.post("/api/embed", json=b, headers=PREFER) for b in small]
            location = running.headers["Location"]
            assert wait_until(lambda: http.get(location).json()["status"] == "running", 60)
            statuses = [http.get(q.headers["Location"]).json()["status"] for q in queued]
        assert statuses == ["queued"] * 3  # one worker thread, busy with the long job
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    with process(serve, tmp_path / "serve.log"):
        assert wait_until(lambda: _ready(url), 90), "the service did not restart"
        with httpx.Client(base_url=url, timeout=120) as http:
            job = wait_job(http, location, seconds=180)
            assert job["status"] == "succeeded" and job["runs"] == 2, job
            sync = http.post("/api/embed", json={"texts": LONG_TEXTS}).json()
            np.testing.assert_allclose(job["result"]["embeddings"], sync["embeddings"], atol=1e-6)
            for body, created in zip(small, queued, strict=True):
                done = wait_job(http, created.headers["Location"], seconds=120)
                assert done["status"] == "succeeded" and done["runs"] == 1, done
                expected = http.post("/api/embed", json=body).json()["embeddings"]
                np.testing.assert_allclose(done["result"]["embeddings"], expected, atol=1e-6)


def test_two_frontends_and_two_workers_share_jobs_on_one_redis(
    tmp_path: Path,
    data_dir: Path,
    settings: Settings,
    triton: EmbeddedTriton,
    redis_server: RedisServer,
) -> None:
    broker = {"broker": redis_server.url, "workers": 0, "lease_seconds": 2}
    config = _config(tmp_path, triton, broker=redis_server.url, workers=1)
    jobs = settings.jobs.model_copy(update=broker)
    workers = [
        process(
            ["worker", "--config", str(config), "--data-dir", str(_data(tmp_path, data_dir, n))],
            tmp_path / f"{n}.log",
        )
        for n in ("worker-a", "worker-b")
    ]
    with (
        workers[0],
        workers[1],
        own_frontend(settings, triton, jobs=jobs) as front_a,
        own_frontend(settings, triton, jobs=jobs) as front_b,
        front_a.client() as a,
        front_b.client() as b,
    ):
        for log in ("worker-a.log", "worker-b.log"):  # both consumers wait on the queue
            assert wait_until(lambda log=log: "threads on redis" in _read(tmp_path / log), 90)
        bodies = [{"texts": [*LONG_TEXTS[:4], f"job {i}"]} for i in range(6)]
        created = [
            (a if i % 2 else b).post("/api/embed", json=body, headers=PREFER)
            for i, body in enumerate(bodies)
        ]
        assert all(c.status_code == 202 for c in created), [c.text for c in created]
        ran_on = set()
        for i, (body, response) in enumerate(zip(bodies, created, strict=True)):
            other = b if i % 2 else a  # each job is read from the frontend that did not take it
            done = wait_job(other, response.headers["Location"], seconds=180)
            assert done["status"] == "succeeded", done
            expected = a.post("/api/embed", json=body).json()["embeddings"]
            np.testing.assert_allclose(done["result"]["embeddings"], expected, atol=1e-6)
            ran_on.add(done["worker"].rsplit(":", 2)[1])  # host:pid:id -> the worker's pid
        assert len(ran_on) == 2, f"all jobs ran on one worker: {ran_on}"
        assert a.get("/api/jobs").json()["total"] == b.get("/api/jobs").json()["total"] == 6


def test_jobs_on_redis_are_taken_and_run_right_after_a_redis_restart(
    settings: Settings, triton: EmbeddedTriton, redis_server: RedisServer
) -> None:
    """The job store's and the queue's pooled connections die with Redis: the first job after
    the restart is still accepted (202, not an error) and run."""
    jobs = settings.jobs.model_copy(update={"broker": redis_server.url, "workers": 1})
    with own_frontend(settings, triton, jobs=jobs) as api, api.client() as http:
        for round_ in ("before", "after"):
            if round_ == "after":
                redis_server.stop(signal.SIGKILL)
                redis_server.start()  # empty again
            body = {"texts": [f"a job {round_} the restart"]}
            created = http.post("/api/embed", json=body, headers=PREFER)
            assert created.status_code == 202, created.text
            done = wait_job(http, created.headers["Location"], seconds=60)
            assert done["status"] == "succeeded", done
