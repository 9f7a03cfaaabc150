"""`homelab-ai serve` as users run it: embedded Triton supervised, restarted, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from frontend.triton.embedded import free_port
from tests.conftest import MINILM_ID


def serve_command(config: Path, data: Path, *extra: str) -> list[str]:
    """`homelab-ai serve` as the installed command runs it."""
    command = [sys.executable, "-m", "frontend.cli", "serve", "--config", str(config)]
    return [*command, "--data-dir", str(data), *extra]


def processes_mentioning(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose command line contains `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found[int(entry.name)] = cmdline
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def status_of(http: httpx.Client, path: str) -> int:
    try:
        return http.get(path).status_code
    except httpx.TransportError:
        return -1


@pytest.fixture
def served(tmp_path: Path, data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(data_dir / "models")  # reuse the imported MiniLM
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"models": {"text_embedding": [{"id": "minilm", "hf_model": MINILM_ID, "threads": 1}]}}
        )
    )
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMELAB_")}
    process = subprocess.Popen(
        serve_command(config, data, "--port", str(port)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        yield process, f"http://127.0.0.1:{port}", data
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def test_serve_supervises_and_stops_triton_cleanly(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, data = served
    marker = str(data.resolve())
    with httpx.Client(base_url=url, timeout=60) as http:
        wait_for(lambda: status_of(http, "/ready") == 200, 90, "the service to become ready")
        assert http.post("/api/embed", json={"texts": ["before the crash"]}).status_code == 200
        servers = [
            p for p, cmd in processes_mentioning(marker).items() if "bin/tritonserver" in cmd
        ]
        assert len(servers) == 1
        assert any("triton_python_backend_stub" in c for c in processes_mentioning(marker).values())

        os.kill(servers[0], signal.SIGKILL)  # Triton dies
        wait_for(lambda: status_of(http, "/ready") == 503, 10, "/ready to report not ready")
        wait_for(lambda: status_of(http, "/ready") == 200, 90, "Triton to be restarted")
        restarted = [p for p, c in processes_mentioning(marker).items() if "bin/tritonserver" in c]
        assert restarted and restarted != servers
        # the model was lost with the old server; the next request reloads it transparently
        response = http.post("/api/embed", json={"texts": ["after the crash"]})
        assert response.status_code == 200, response.text
        assert len(response.json()["embeddings"][0]) == 384

    process.send_signal(signal.SIGTERM)
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught
    assert process.wait(60) in (0, -signal.SIGTERM)
    log = (data.parent / "serve.log").read_text()
    assert "tritonserver stopped" in log
    assert "Application shutdown complete" in log
    wait_for(lambda: not processes_mentioning(marker), 10, "Triton and its stubs to exit")


def test_serve_refuses_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("resources:\n  max_concurrent_requests: lots\n")
    result = subprocess.run(
        serve_command(config, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "resources.max_concurrent_requests" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was started or written
