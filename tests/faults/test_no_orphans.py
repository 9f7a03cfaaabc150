"""Nothing of the embedded Triton outlives the service: not tritonserver, not a model stub, not
a stub's shared-memory region, however the service dies.

Each test runs its own `serve` in a process group of its own (as a container or a service
manager would) and SIGKILLs that group, or stops the processes it started, by pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from frontend.triton.leftovers import shm_prefix
from frontend.triton.reaper import SHM_DIR
from tests.faults.test_serve_faults import CONFIG, serving, tritonservers
from tests.integration.test_serve import processes_mentioning, wait_for

STUB = "triton_python_backend_stub"
PREFER = {"Prefer": "respond-async"}
# ~250 tokens each: a 256-text job keeps the model busy for many seconds.
LONG_TEXTS = [f"part {i}: " + "the homelab queue outlives a crash " * 40 for i in range(256)]
JOBS_CONFIG: dict[str, Any] = {
    **CONFIG,
    "limits": {"max_texts_per_request": 256, "max_text_chars": 4000},
    "jobs": {"workers": 2},
}


def regions(data: Path) -> list[str]:
    return sorted(p.name for p in SHM_DIR.glob(f"{shm_prefix(data / 'triton')}*"))


def stubs_of(data: Path) -> list[int]:
    return [p for p, cmd in processes_mentioning(str(data.resolve())).items() if STUB in cmd]


def reaper_of(data: Path) -> int:
    [pid] = [
        p
        for p, cmd in processes_mentioning(str(data.resolve())).items()
        if "triton/reaper.py" in cmd
    ]
    return pid


def test_sigkill_of_the_service_group_with_embedding_jobs_queued_leaves_nothing_behind(
    tmp_path: Path, data_dir: Path
) -> None:
    """Seen 3 times out of 3 before: stubs alive (PPID 1, futex wait) 50 minutes later. That
    wedge is intermittent (here the stubs mostly exited by themselves), so the test stops the
    stubs at the kill: a stub that cannot exit by itself, every time."""
    with serving(tmp_path, data_dir, JOBS_CONFIG, own_session=True) as (process, url, data):
        marker = str(data.resolve())
        with httpx.Client(base_url=url, timeout=60) as http:
            jobs = [
                http.post("/api/embed", json={"texts": LONG_TEXTS}, headers=PREFER)
                for _ in range(6)
            ]
            assert all(job.status_code == 202 for job in jobs), [job.text for job in jobs]

            def running() -> bool:
                states = [http.get(job.headers["Location"]).json()["status"] for job in jobs]
                return states.count("running") >= 2

            wait_for(running, 60, "two jobs to be running")
        stubs = stubs_of(data)
        assert stubs and regions(data)
        time.sleep(0.5)  # the stubs are mid-batch
        try:
            for pid in stubs:
                os.kill(pid, signal.SIGSTOP)  # wedged: it will not exit by itself
            os.killpg(process.pid, signal.SIGKILL)  # what `docker kill` and a group OOM kill do
            process.wait(10)
            wait_for(lambda: not processes_mentioning(marker), 30, "Triton and its stubs to exit")
            assert regions(data) == []
        finally:
            for pid in set(stubs) & set(stubs_of(data)):  # left by a failure: ended here
                os.kill(pid, signal.SIGKILL)
    # The same data dir again (its jobs not resumed here: they would queue the first request).
    again = {**JOBS_CONFIG, "jobs": {"enabled": False}}
    with serving(tmp_path, data_dir, again, own_session=True) as (_, url, data):
        assert len(tritonservers(data)) == 1
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.post("/api/embed", json={"texts": ["again"]}).status_code == 200


def test_a_start_ends_the_stubs_and_regions_an_earlier_run_of_the_data_dir_left(
    tmp_path: Path, data_dir: Path
) -> None:
    """What a run whose whole tree was SIGKILLed at once, or an older version, leaves: stubs
    with no parent (stopped here, so they cannot exit by themselves) and their regions."""
    with serving(tmp_path, data_dir, own_session=True) as (process, _, data):
        stubs, left = stubs_of(data), regions(data)
        assert stubs and left
        reaper = reaper_of(data)
        for pid in [*stubs, reaper]:
            os.kill(pid, signal.SIGSTOP)  # the reaper too: nothing cleans up
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        os.kill(reaper, signal.SIGKILL)  # tritonserver dies with it; the stubs stay
        wait_for(lambda: not tritonservers(data), 15, "tritonserver to die with its reaper")
        assert stubs_of(data) == stubs and regions(data) == left
    try:
        with serving(tmp_path, data_dir, own_session=True) as (_, url, data):
            assert not set(stubs_of(data)) & set(stubs)
            assert not set(regions(data)) & set(left)
            assert len(tritonservers(data)) == 1
            with httpx.Client(base_url=url, timeout=60) as http:
                assert http.post("/api/embed", json={"texts": ["again"]}).status_code == 200
            log = (tmp_path / "serve.log").read_text()
            assert "an earlier run of" in log
    finally:
        for pid in stubs:  # if the start did not end them, this test does
            if pid in stubs_of(data):
                os.kill(pid, signal.SIGKILL)
