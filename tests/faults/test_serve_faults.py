"""`homelab-ai serve` killed, stopped under load, or started over a Triton left behind.

Each test runs its own `serve` process (its own embedded Triton) on loopback and signals only
that process and the tritonserver it started, by pid. The drain tests run with busy loops of
their own on every core: CI machines are shared and loaded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from frontend.core.config import load_settings
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, free_port, triton_environment
from tests.conftest import MINILM_ID
from tests.integration.test_serve import processes_mentioning, serve_command, status_of, wait_for

# Long texts (~250 tokens each): a batch of 32 keeps the model busy for a good part of a second.
TEXTS = [f"paragraph {i}: " + "the homelab server embeds long documents " * 40 for i in range(32)]
CONFIG: dict[str, Any] = {
    "models": {"text_embedding": [{"id": "minilm", "hf_model": MINILM_ID, "threads": 1}]},
    "server": {"drain_timeout_seconds": 30},
}
# Busy loops beside the drain tests: with 3 on 2 shared cores, 12 x 32 long texts took ~90 s
# (4 of them finished within a 30 s drain, measured), so the drain that must let them finish
# gets room, and the one that must cut them short does.
BUSY_LOOPS = 3
BURN = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass\n"


@pytest.fixture
def busy_cpus() -> Iterator[None]:
    """BUSY_LOOPS processes spinning for the test's duration (bounded: 300 s), then killed."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(BUSY_LOOPS)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait(10)


@contextmanager
def serving(
    tmp_path: Path,
    data_dir: Path,
    config: dict[str, Any] | None = None,
    own_session: bool = False,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`serve` on a data dir under tmp_path; `own_session`: its own process group, as a
    container's or a service manager's, so the test can SIGKILL the group."""
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        (data / "models").symlink_to(data_dir / "models")  # reuse the imported MiniLM
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config or CONFIG))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMELAB_")}
    with open(tmp_path / "serve.log", "ab") as log:
        process = subprocess.Popen(
            serve_command(config_file, data, "--port", str(port)),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=own_session,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                wait_for(lambda: status_of(http, "/ready") == 200, 90, "the service to be ready")
                assert http.post("/api/embed", json={"texts": ["warm up"]}).status_code == 200
            yield process, url, data
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def active_requests(http: httpx.Client) -> float:
    """The service's active_requests gauge (API requests in flight; /metrics is not one)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("active_requests "):
            return float(line.split()[1])
    return 0.0


def tritonservers(data: Path) -> list[int]:
    found = processes_mentioning(str(data.resolve()))
    return [pid for pid, cmd in found.items() if "bin/tritonserver" in cmd]


def post_batch(url: str) -> int | str:
    """One embed of 32 texts: its status, or the transport error's name (the request was cut
    or never connected)."""
    status, _ = post_batch_answer(url)
    return status


def post_batch_answer(url: str) -> tuple[int | str, Any]:
    """post_batch's status with the JSON body of an answer that is not a 200 (else None)."""
    try:
        with httpx.Client(base_url=url, timeout=300) as http:
            response = http.post("/api/embed", json={"texts": TEXTS})
    except httpx.TransportError as exc:
        return type(exc).__name__, None
    if response.status_code == 200:
        return 200, None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def with_drain(seconds: float) -> dict[str, Any]:
    return {**CONFIG, "server": {"drain_timeout_seconds": seconds}}


def start_12_and_sigterm(
    process: subprocess.Popen[bytes], url: str
) -> tuple[list[tuple[int | str, Any]], int, httpx.Response, float]:
    """12 embeds of 32 long texts running, then SIGTERM: their answers, /ready and a new
    request right after the signal, and when it was sent."""
    barrier = threading.Barrier(13)

    def running(_: int) -> tuple[int | str, Any]:
        barrier.wait(30)
        return post_batch_answer(url)

    with ThreadPoolExecutor(12) as pool, httpx.Client(base_url=url, timeout=30) as http:
        futures = [pool.submit(running, i) for i in range(12)]
        barrier.wait(30)
        for _ in range(400):  # until the 12 requests are running (bounded: ~20 s)
            if http.get("/api/status").json()["in_flight"] >= 12:
                break
            time.sleep(0.05)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        ready = status_of(http, "/ready")  # out of rotation at once
        late = http.post("/api/embed", json={"texts": ["too late"]})
        answers = [f.result(330) for f in futures]
    return answers, ready, late, signalled


def test_sigterm_with_12_requests_running_lets_them_finish(
    tmp_path: Path, data_dir: Path, busy_cpus: None
) -> None:
    # Room for 12 x 32 long texts on a loaded box: this test is about letting them finish.
    with serving(tmp_path, data_dir, with_drain(300)) as (process, url, data):
        answers, ready, late, signalled = start_12_and_sigterm(process, url)
        statuses = [status for status, _ in answers]

        assert process.wait(60) in (0, -signal.SIGTERM)
        stopped_after = time.monotonic() - signalled
        assert statuses == [200] * 12, answers
        assert ready == 503
        assert late.status_code == 503
        assert late.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "shutting down" in late.json()["error"]["message"]
        wait_for(lambda: not processes_mentioning(str(data.resolve())), 10, "Triton to exit")
        log = (tmp_path / "serve.log").read_text()
        assert "drained: no request running" in log and "tritonserver stopped" in log
        print(f"\nSIGTERM, 12 x 32 texts running: 12 x 200; exit after {stopped_after:.1f} s")


def test_requests_still_running_at_the_drain_timeout_get_a_503_never_a_500(
    tmp_path: Path, data_dir: Path, busy_cpus: None
) -> None:
    # 2 s: far less than 12 x 32 long texts need, so most are still running when it ends.
    with serving(tmp_path, data_dir, with_drain(2)) as (process, url, data):
        answers, ready, late, signalled = start_12_and_sigterm(process, url)
        assert process.wait(60) in (0, -signal.SIGTERM)
        stopped_after = time.monotonic() - signalled
    statuses = Counter(status for status, _ in answers)
    # None was streaming its answer, so none may be cut: each got its 200 or a clean 503.
    assert set(statuses) <= {200, 503}, answers
    assert statuses[503] >= 1, answers
    for status, body in answers:
        if status == 503:
            error = body["error"]
            assert error["code"] == "SERVICE_UNAVAILABLE", body
            assert "shutting down" in error["message"] and error["request_id"], body
    assert ready == 503 and late.status_code == 503
    wait_for(lambda: not processes_mentioning(str(data.resolve())), 15, "Triton to exit")
    log = (tmp_path / "serve.log").read_text()
    assert f"answering {statuses[503]} running requests with 503" in log
    assert "Exception in ASGI application" not in log and "tritonserver stopped" in log
    print(f"\nSIGTERM past a 2 s drain, 12 x 32 texts running: {dict(statuses)}")
    print(f"exit after {stopped_after:.1f} s")


def test_sigterm_under_load_answers_only_200_or_a_clean_503(
    tmp_path: Path, data_dir: Path, busy_cpus: None
) -> None:
    # Room for the 8 requests running at the signal to finish on a loaded box.
    with serving(tmp_path, data_dir, with_drain(300)) as (process, url, _):
        stop = threading.Event()
        results: list[int | str] = []

        def client() -> None:
            for _ in range(400):  # bounded; ends when the service is gone
                if stop.is_set():
                    return
                outcome = post_batch(url)
                results.append(outcome)
                if outcome == "ConnectError":
                    return

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        # All 8 running at the signal (a busy box may take seconds to send the first ones).
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_for(lambda: active_requests(http) >= 8, 120, "8 requests in flight")
        process.send_signal(signal.SIGTERM)
        assert process.wait(330) in (0, -signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join(60)
        counts = Counter(results)
        # Answers are 200 or 503; a client may find the listener closed after the drain, but no
        # request is cut mid-way (ReadError, RemoteProtocolError) and none gets a 500.
        assert set(counts) <= {200, 503, "ConnectError"}, counts
        assert counts[200] >= 8
        print(f"\nSIGTERM under load (8 clients x 32 texts): {dict(counts)}")


def test_sigkill_of_tritonserver_mid_request_gives_503_then_serves(
    tmp_path: Path, data_dir: Path
) -> None:
    with serving(tmp_path, data_dir) as (_, url, data):
        [server] = tritonservers(data)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(post_batch, url) for _ in range(8)]
            time.sleep(0.1)
            os.kill(server, signal.SIGKILL)
            statuses = [f.result(90) for f in futures]
        assert set(statuses) <= {200, 503}, statuses
        with httpx.Client(base_url=url, timeout=60) as http:
            wait_for(lambda: status_of(http, "/ready") == 200, 90, "Triton to be restarted")
            response = http.post("/api/embed", json={"texts": TEXTS})
            assert response.status_code == 200, response.text
        assert tritonservers(data) and tritonservers(data) != [server]


def test_a_load_that_finds_tritonserver_restarting_waits_for_it(
    tmp_path: Path, data_dir: Path
) -> None:
    """A model to load while the embedded tritonserver is dead and being restarted (a crash,
    or a stuck load's restart): the request waits for the new server and is answered."""
    with serving(tmp_path, data_dir) as (_, url, data):
        [server] = tritonservers(data)
        with httpx.Client(base_url=url, timeout=120) as http:
            http.post("/api/models/minilm/unload").raise_for_status()
            os.kill(server, signal.SIGKILL)
            response = http.post("/api/embed", json={"texts": ["after the crash"]})
            assert response.status_code == 200, response.text
            assert len(response.json()["embeddings"][0]) == 384
        assert tritonservers(data) and tritonservers(data) != [server]


def test_sigkill_of_the_frontend_leaves_no_triton_and_a_restart_serves(
    tmp_path: Path, data_dir: Path
) -> None:
    with serving(tmp_path, data_dir) as (process, _, data):
        marker = str(data.resolve())
        assert tritonservers(data)
        assert any("triton_python_backend_stub" in c for c in processes_mentioning(marker).values())
        process.kill()  # what the OOM killer does
        process.wait(10)
        wait_for(lambda: not processes_mentioning(marker), 15, "Triton and its stubs to exit")
    with serving(tmp_path, data_dir) as (_, url, data):  # same data dir
        assert len(tritonservers(data)) == 1
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.post("/api/embed", json={"texts": ["again"]}).status_code == 200


def test_a_start_stops_the_tritonserver_an_earlier_run_left_behind(
    tmp_path: Path, data_dir: Path
) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()

    def server() -> EmbeddedTriton:
        return EmbeddedTriton(
            repositories=[repository],
            work_dir=tmp_path / "triton",
            ports=TritonPorts.choose(),
            env=triton_environment(load_settings(None, data_dir=data_dir)),
        )

    async def scenario() -> None:
        left = server()
        await left.start(60)
        assert left._supervisor is not None  # an orphan has no supervisor: stop it
        left._supervisor.cancel()
        left_pid = left.process.pid if left.process else 0
        fresh = server()
        await fresh.start(60)
        try:
            assert left.process is not None and left.process.wait(15) is not None
            assert fresh.is_running() and fresh.process is not None
            assert fresh.pid_file.read_text().strip() == str(fresh.process.pid)
            assert left_pid not in tritonservers(tmp_path)
        finally:
            await fresh.stop()
        assert not fresh.pid_file.exists()

    asyncio.run(scenario())
