"""Ports, paths, environment variables and secrets in the deployment files agree with the app.

Every HOMELAB_* variable a container gets must name a real setting (and load), the data dir,
Triton addresses and ports must line up between the frontend, Triton, Prometheus and the
Kubernetes Services, and Triton's environment must be the one the embedded mode gives it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from frontend.core.config import Settings, load_settings
from frontend.triton.embedded import triton_environment
from frontend.triton.serve import CPU_ONLY_FLAGS, SHARED_FLAGS
from tests.deploy_files import (
    COMPOSE_CPU_FILE,
    COMPOSE_FILE,
    DOCKERFILES,
    PROMETHEUS_CONFIG,
    REPO,
    compose_config,
    container,
    container_env,
    dockerfile_cmd,
    dockerfile_env,
    dockerfile_instructions,
    env_example,
    manifest,
    manifests,
    published_ports,
    served_command,
)

SHIPPED_CONFIG = REPO / "config.yaml"
TRITON_GRPC_PORT = 8001  # tritonserver's defaults; the commands do not change them
TRITON_METRICS_PORT = 8002
DATA_DIR = Path("/data")


def settings_path(variable: str) -> tuple[str, ...]:
    assert variable.startswith("HOMELAB_"), variable
    return tuple(part.lower() for part in variable.removeprefix("HOMELAB_").split("__"))


def has_setting(path: tuple[str, ...]) -> bool:
    model: Any = Settings
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        field = model.model_fields.get(part)
        if field is None:
            return False
        model = field.annotation
    return True


def frontend_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the frontend container ends up with: config.yaml plus its environment."""
    for variable, value in env.items():
        if not variable.startswith("HOMELAB_"):
            continue
        path = settings_path(variable)
        assert has_setting(path), f"{variable} names no setting"
        monkeypatch.setenv(variable, value)
    return load_settings(SHIPPED_CONFIG)


TRITON_DEPLOY_FILES = (
    "docker-compose.yml",
    "docker-compose.cpu.yml",
    "Dockerfile.triton",
    "deploy/triton-entrypoint.sh",
    "deploy/kubernetes/40-triton.yaml",
)
TRITON_FLAGS = (
    *(flag.partition("=")[0] for flag in (*SHARED_FLAGS, *CPU_ONLY_FLAGS)),
    "--model-repository",
    "--http-restricted-api",
    "--grpc-restricted-protocol",
    "--backend-directory",
)


@pytest.mark.parametrize("name", TRITON_DEPLOY_FILES)
def test_no_deploy_file_spells_tritonserver_flags(name: str) -> None:
    """The flags live in frontend/triton/serve.py only, so the deployments cannot drift."""
    text = (REPO / name).read_text(encoding="utf-8")

    assert [flag for flag in TRITON_FLAGS if flag in text] == []


def every_triton_command(tmp_path: Path) -> dict[str, list[str]]:
    """The tritonserver command line of every way Triton runs: embedded, image, compose, pods."""
    from frontend.triton.embedded import EmbeddedTriton, TritonPorts

    triton_image = REPO / "Dockerfile.triton"
    commands = {
        "embedded": EmbeddedTriton([tmp_path], tmp_path, TritonPorts(1, 2, 3)).command(),
        "image": served_command(dockerfile_cmd(triton_image), dockerfile_env(triton_image)),
    }
    services = compose_config(COMPOSE_FILE, COMPOSE_CPU_FILE)["services"]
    for name in ("triton", "triton-cpu"):
        service = services[name]
        commands[name] = served_command(service["command"], service.get("environment", {}))
    for pool in (d for d in manifests() if d["kind"] == "Deployment"):
        spec = container(pool)
        if spec["name"] == "triton":
            commands[pool["metadata"]["name"]] = served_command(spec["args"], container_env(spec))
    return commands


def test_every_triton_runs_the_shared_flags(tmp_path: Path) -> None:
    """Explicit model control, and one model that fails to load must not take a Triton (and the
    service) out of rotation: the same flags in embedded mode, the image, compose and pods."""
    commands = every_triton_command(tmp_path)

    assert {"embedded", "image", "triton", "triton-cpu", "triton-pool-a"} <= set(commands)
    for name, command in commands.items():
        assert "--model-control-mode=explicit" in command, name
        assert "--strict-readiness=false" in command, name
        assert "--disable-auto-complete-config" in command, name
        assert "--exit-timeout-secs=10" in command, name
        assert command[0].endswith("tritonserver"), name
    assert set(CPU_ONLY_FLAGS) <= set(commands["triton-cpu"])
    assert not set(CPU_ONLY_FLAGS) & set(commands["triton"])


def test_unknown_variables_are_caught() -> None:
    assert has_setting(("triton", "url"))
    assert not has_setting(("triton", "adress"))
    assert not has_setting(("data_dir", "x"))


# --- Compose -------------------------------------------------------------------------------


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), (COMPOSE_FILE, COMPOSE_CPU_FILE)])
def test_compose_frontend_reaches_triton_and_shares_its_data(
    files: tuple[Path, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose_config(*files)["services"]
    frontend = services["frontend"]
    triton_name = "triton-cpu" if COMPOSE_CPU_FILE in files else "triton"
    triton = services[triton_name]

    settings = frontend_settings(frontend["environment"], monkeypatch)

    assert settings.data_dir == DATA_DIR
    assert published_ports(frontend) == [("127.0.0.1", settings.server.port)]  # host-only
    assert settings.server.host == "0.0.0.0"
    host, port = settings.triton.urls[0].rsplit(":", 1)
    names = {triton_name, *triton.get("networks", {}).get("default", {}).get("aliases", [])}
    assert host in names and int(port) == TRITON_GRPC_PORT
    # One volume, mounted at the data dir in both containers.
    assert "homelab-data:/data:rw" in frontend["volumes"]
    assert "homelab-data:/data:rw" in triton["volumes"]
    command = served_command(triton["command"], triton["environment"])
    assert f"--model-repository={settings.triton_repository_dir}" in command
    assert "--model-control-mode=explicit" in command
    assert any(v.endswith(":/app/config.yaml:ro") for v in frontend["volumes"])


def test_compose_triton_and_frontend_share_the_admin_key() -> None:
    services = compose_config()["services"]
    key = env_example()["TRITON_ADMIN_KEY"]

    triton = services["triton"]
    command = served_command(triton["command"], triton["environment"])

    assert services["frontend"]["environment"]["HOMELAB_TRITON__ADMIN_KEY"] == key
    assert triton["environment"]["TRITON_ADMIN_KEY"] == key
    assert f"--http-restricted-api=model-repository:admin-key={key}" in command
    assert f"--grpc-restricted-protocol=model-repository:admin-key={key}" in command


def test_prometheus_scrapes_the_api_and_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose_config(profiles=("monitoring",))["services"]
    settings = frontend_settings(services["frontend"]["environment"], monkeypatch)
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["scrape_configs"]
    targets = {
        job["job_name"]: (job["metrics_path"], job["static_configs"][0]["targets"])
        for job in scrape
    }

    assert targets["homelab-ai"] == ("/metrics", [f"frontend:{settings.server.port}"])
    assert targets["triton"] == ("/metrics", [f"triton:{TRITON_METRICS_PORT}"])
    assert any(
        v.endswith(":/etc/prometheus/prometheus.yml:ro") and v.startswith(str(PROMETHEUS_CONFIG))
        for v in services["prometheus"]["volumes"]
    )


# --- images --------------------------------------------------------------------------------


def test_triton_image_gives_the_stubs_the_embedded_environment() -> None:
    expected = triton_environment(load_settings(None, data_dir=DATA_DIR))

    env = dockerfile_env(REPO / "Dockerfile.triton")

    assert {key: env.get(key) for key in expected} == expected


def test_frontend_image_points_at_the_triton_image_task_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = frontend_settings(dockerfile_env(REPO / "Dockerfile.frontend"), monkeypatch)
    triton = dockerfile_instructions(REPO / "Dockerfile.triton")
    workdir = None
    for keyword, rest in triton:
        if keyword == "WORKDIR":
            workdir = Path(rest)
        if keyword == "COPY" and rest.split()[0].rstrip("/") == "model_repository":
            assert workdir is not None
            copied_to = workdir / rest.split()[1]
            break
    else:
        raise AssertionError("Dockerfile.triton does not copy model_repository/")

    assert settings.triton.task_code_dir == copied_to
    assert settings.data_dir == DATA_DIR
    exposed = [
        rest for keyword, rest in dockerfile_instructions(DOCKERFILES[0]) if keyword == "EXPOSE"
    ]
    assert exposed == [str(settings.server.port)]


# --- Kubernetes ----------------------------------------------------------------------------


def service_port(name: str, port_name: str) -> int:
    ports = {p["name"]: p for p in manifest("Service", name)["spec"]["ports"]}
    return int(ports[port_name]["port"])


def probe_path(spec: dict[str, Any], probe: str) -> tuple[str, Any]:
    get = spec[probe]["httpGet"]
    return get["path"], get["port"]


def test_frontend_deployment_settings_and_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = container(manifest("Deployment", "frontend"))
    env = container_env(spec)

    settings = frontend_settings(env, monkeypatch)

    assert settings.data_dir == DATA_DIR
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http": settings.server.port}
    assert probe_path(spec, "livenessProbe") == ("/health", "http")
    assert probe_path(spec, "readinessProbe") == ("/ready", "http")
    assert service_port("frontend", "http") == settings.server.port
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    assert mounts["data"] == str(DATA_DIR) and mounts["config"] == "/app/config.yaml"
    assert env["HOMELAB_TRITON__ADMIN_KEY"] == "secret:homelab-triton-admin/admin-key"
    redis = env["HOMELAB_SECURITY__RATE_LIMIT__STORAGE_URI"]
    assert redis == f"redis://redis:{service_port('redis', 'redis')}/0"
    assert env["HOMELAB_CACHE__STORAGE_URI"] == redis  # replicas share the result cache
    # replicas share the jobs through Redis (db 1), not SQLite on the shared volume
    assert settings.jobs.broker == f"redis://redis:{service_port('redis', 'redis')}/1"
    annotations = manifest("Deployment", "frontend")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.server.port)


def test_frontend_knows_every_triton_pool_and_each_serves_its_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = frontend_settings(
        container_env(container(manifest("Deployment", "frontend"))), monkeypatch
    )
    pools = [
        d for d in manifests() if d["kind"] == "Deployment" and container(d)["name"] == "triton"
    ]

    assert len(settings.triton.urls) == len(pools) >= 2
    for url in settings.triton.urls:
        host, port = url.rsplit(":", 1)
        assert service_port(host, "grpc") == int(port) == TRITON_GRPC_PORT
        service = manifest("Service", host)
        pool = next(
            d
            for d in pools
            if d["spec"]["template"]["metadata"]["labels"].items()
            >= service["spec"]["selector"].items()
        )
        assert pool["spec"]["replicas"] == 1  # one server per URL (loads go to each URL)
        spec = container(pool)
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        assert ports["grpc"] == TRITON_GRPC_PORT and ports["metrics"] == TRITON_METRICS_PORT
        assert probe_path(spec, "livenessProbe") == ("/v2/health/live", "http")
        assert probe_path(spec, "readinessProbe") == ("/v2/health/ready", "http")
        env = container_env(spec)
        command = served_command(spec["args"], env)
        assert f"--model-repository={settings.triton_repository_dir}" in command
        assert env["TRITON_ADMIN_KEY"] == "secret:homelab-triton-admin/admin-key"
        assert (
            "--grpc-restricted-protocol=model-repository:admin-key="
            "secret:homelab-triton-admin/admin-key" in command
        )
        assert spec["resources"]["limits"]["nvidia.com/gpu"] == 1
        annotations = pool["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(TRITON_METRICS_PORT)


def test_every_pod_mounts_the_one_shared_data_volume() -> None:
    claim = manifest("PersistentVolumeClaim", "homelab-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for deployment in (d for d in manifests() if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        if deployment["metadata"]["name"] == "redis":
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "homelab-data"
        mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert mounts["data"] == str(DATA_DIR)
        assert pod["securityContext"]["runAsNonRoot"] is True
