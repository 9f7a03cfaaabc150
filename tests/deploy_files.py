"""Read the deployment files (compose, Dockerfiles, Kubernetes manifests) for the tests.

The validators are real tools: a Compose implementation (`docker compose` v2 or Debian's
`docker-compose`), `hadolint` and `kubernetes-validate` (offline schemas). `bash
tools/install.sh --dev` installs all three; a missing one fails the tests that need it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_CPU_FILE = REPO / "docker-compose.cpu.yml"
ENV_EXAMPLE = REPO / ".env.example"
KUBERNETES_DIR = REPO / "deploy" / "kubernetes"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DOCKERFILES = (REPO / "Dockerfile.frontend", REPO / "Dockerfile.triton", REPO / "Dockerfile")
INSTALL_HINT = "install the deployment validators with: bash tools/install.sh --dev"


def tool(name: str) -> str:
    """A command installed next to this interpreter (the venv) or on PATH; else fail."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"'{name}' is not installed; {INSTALL_HINT}")
    return found


@functools.cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` (v2 plugin) when present, else `docker-compose`; config needs no engine."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return (docker, "compose")
    return (tool("docker-compose"),)


def run_compose(
    *args: str, files: tuple[Path, ...] = (COMPOSE_FILE,), env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    command = [*compose_command(), "--project-directory", str(REPO), "--env-file", str(env_file)]
    for path in files:
        command += ["-f", str(path)]
    # The shell's own values would win over the env file: leave them out.
    example = env_example()  # read once, not once per variable
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in example and not key.startswith("COMPOSE_")
    }
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def compose_config(*files: Path, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved compose project (`compose config`), with .env.example's values."""
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_compose(*args, "config", files=files or (COMPOSE_FILE,))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each published port, whichever form `compose config`
    prints: v2 gives mappings, Debian's docker-compose 1.29 strings ("127.0.0.1:8000:8000/tcp")."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append((str(port.get("host_ip", "0.0.0.0")), int(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            ports.append((parts[0] if len(parts) == 3 else "0.0.0.0", int(parts[-1])))
    return ports


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES_DIR.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def container_env(spec: dict[str, Any]) -> dict[str, str]:
    """name -> value; a value from a Secret reads as 'secret:<name>/<key>'."""
    env = {}
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def dockerfile_env(path: Path) -> dict[str, str]:
    env = {}
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


SERVE = ["python3", "-m", "frontend.triton.serve", "--exec"]


def dockerfile_cmd(path: Path) -> list[str]:
    [cmd] = [rest for keyword, rest in dockerfile_instructions(path) if keyword == "CMD"]
    parsed = json.loads(cmd)
    assert isinstance(parsed, list)
    return [str(arg) for arg in parsed]


def served_command(command: list[str], env: dict[str, str]) -> list[str]:
    """The tritonserver command line a Triton container runs: its command must be `python3 -m
    frontend.triton.serve --exec [...]`, which builds the line from its arguments and env."""
    from frontend.triton.serve import container_command, parse_args

    assert command[: len(SERVE)] == SERVE, command
    args, extra = parse_args(command[len(SERVE) :])
    return container_command(env, cpu_only=args.cpu_only, extra=extra)
