"""The deployment files pass real validators: Compose, hadolint, Kubernetes schemas.

No Docker engine is needed: `compose config` resolves and validates a project offline,
hadolint lints Dockerfiles, kubernetes-validate checks manifests against the API schemas it
ships. Each validator is also shown a broken file, so a silently passing tool is noticed.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_files import (
    COMPOSE_CPU_FILE,
    COMPOSE_FILE,
    DOCKERFILES,
    KUBERNETES_DIR,
    REPO,
    compose_config,
    dockerfile_instructions,
    manifests,
    published_ports,
    run_compose,
    tool,
)

# --- Compose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "profiles"),
    [
        ((COMPOSE_FILE,), ()),
        ((COMPOSE_FILE,), ("monitoring",)),
        ((COMPOSE_FILE, COMPOSE_CPU_FILE), ()),
        ((COMPOSE_FILE, COMPOSE_CPU_FILE), ("monitoring",)),
    ],
    ids=["gpu", "gpu+monitoring", "cpu", "cpu+monitoring"],
)
def test_compose_variants_validate(files: tuple[Path, ...], profiles: tuple[str, ...]) -> None:
    config = compose_config(*files, profiles=profiles)

    assert {"frontend", "triton", "prometheus"} <= set(config["services"])


def test_compose_refuses_to_start_without_the_admin_key(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("# no TRITON_ADMIN_KEY\n", encoding="utf-8")

    result = run_compose("config", env_file=empty)

    assert result.returncode != 0
    assert "TRITON_ADMIN_KEY" in result.stderr


def test_compose_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    shm_size: [1, 2]\n", encoding="utf-8")

    result = run_compose("config", files=(broken,))

    assert result.returncode != 0


def test_gpu_variant_reserves_a_gpu_and_publishes_only_the_api() -> None:
    services = compose_config(COMPOSE_FILE)["services"]

    devices = services["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "ports" not in services["triton"]
    assert sorted(services["triton"]["expose"]) == ["8000", "8001", "8002"]
    assert [target for _, target in published_ports(services["frontend"])] == [8000]
    assert services["frontend"]["init"] is True  # Chromium's child processes are reaped
    assert services["frontend"]["shm_size"] and services["triton"]["shm_size"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["frontend"] and "profiles" not in services["triton"]


def test_cpu_variant_replaces_the_gpu_server_under_the_same_name() -> None:
    services = compose_config(COMPOSE_FILE, COMPOSE_CPU_FILE)["services"]
    gpu, cpu = services["triton"], services["triton-cpu"]

    assert gpu["profiles"] == ["gpu"]  # off unless asked for
    assert "profiles" not in cpu and "deploy" not in cpu
    assert cpu["networks"]["default"]["aliases"] == ["triton"]
    assert cpu["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    # Same server otherwise: command (plus --cpu-only), admin key, volumes, shared memory.
    assert cpu["command"] == [*gpu["command"], "--cpu-only"]
    assert cpu["environment"] == gpu["environment"]
    assert cpu["volumes"] == gpu["volumes"] and cpu["shm_size"] == gpu["shm_size"]


# --- hadolint ------------------------------------------------------------------------------


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_dockerfiles_pass_hadolint() -> None:
    result = hadolint(*DOCKERFILES)

    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM debian\nRUN apt-get install curl\n", encoding="utf-8")

    result = hadolint(careless)

    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user_with_a_healthcheck(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    users = [rest for keyword, rest in instructions if keyword == "USER"]

    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in instructions)


# --- Kubernetes ----------------------------------------------------------------------------


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        pytest.fail("kubernetes-validate is not installed; bash tools/install.sh --dev")
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_manifests_match_the_kubernetes_schemas() -> None:
    paths = sorted(KUBERNETES_DIR.glob("*.yaml"))

    result = kubernetes_validate(*paths)

    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {d["kind"] for d in manifests()}
    assert {"Deployment", "Service", "PersistentVolumeClaim", "HorizontalPodAutoscaler"} <= kinds


def test_schema_validation_catches_a_misspelt_field(tmp_path: Path) -> None:
    frontend: dict[str, Any] = next(
        d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "frontend"
    )
    probe = frontend["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(frontend), encoding="utf-8")

    result = kubernetes_validate(broken)

    assert result.returncode != 0
    assert "periodSecond" in result.stdout + result.stderr


# --- .dockerignore -------------------------------------------------------------------------


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in patterns
        for prefix in prefixes
    )


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", ["data", ".venv", "tests", ".env", ".git", "frontend/__pycache__"])
def test_dockerignore_keeps_user_data_and_tests_out(path: str) -> None:
    assert ignored(path, dockerignore())


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_everything_the_images_copy_is_in_the_build_context(dockerfile: Path) -> None:
    sources = [
        source
        for keyword, rest in dockerfile_instructions(dockerfile)
        if keyword == "COPY"
        for source in rest.split()[:-1]
    ]

    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source, dockerignore()), f"{source} is excluded by .dockerignore"
