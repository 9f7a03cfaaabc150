"""Podman for the end-to-end tests: a local base image, cached builds, real containers.

No registry is reachable on these machines, so every image is built here: a Debian 12 base
made with debootstrap once (podman's own image store keeps it between runs), then the
project's Dockerfiles on it with `--build-arg BASE=...`. Builds reuse podman's layer cache,
so a run after a code change rebuilds only the code layer. The machine's pip setup (config
files, local wheels, constraints, CA bundle) is mounted read-only into each build: without
it `pip install torch==2.13.0` would pull PyPI's CUDA build.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = Path(__file__).resolve().parent / "images"
BASE_IMAGE = "localhost/homelab-e2e-base:bookworm"
# On every container and volume the tests make: "<pid>-<start time>" of the pytest process, so a
# later run removes only what a run that is no longer alive left (never another live run's).
LABEL = "homelab-ai-e2e.owner"
OWNER = f"{os.getpid()}-{int(psutil.Process().create_time())}"
BUILD_LOCK = Path("/var/tmp/homelab-e2e-build.lock")  # one image build at a time on the box
INSTALL_HINT = "bash tools/install.sh --dev installs podman, runc and debootstrap (root, Debian)"
DEBIAN_MIRROR = os.environ.get("HOMELAB_E2E_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CERTS = Path("/etc/ssl/certs")
CERTS_IN_BUILD = "/run/host-certs"
BUILD_TIMEOUT = 45 * 60  # a cold build on a busy 2-core box; the README gives the budgets


@functools.cache
def engine_problem() -> str | None:
    """Why no container can run here (the skip reason), or None."""
    if shutil.which("podman") is None:
        return f"no container engine: podman is not installed ({INSTALL_HINT})"
    if os.geteuid() != 0:
        return "the container tests run podman as root (rootless podman is not set up here)"
    try:
        info = subprocess.run(
            ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`podman info` did not answer in 120 s"
    if info.returncode != 0:
        return f"podman cannot run containers here: {info.stderr.strip()[-300:]}"
    return None


def podman(
    *args: str, timeout: float = 300, check: bool = True, input_bytes: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=input_bytes is None,
        input=input_bytes,
        timeout=timeout,
        check=False,
    )
    if input_bytes is not None:  # normalise to text for the callers
        result = subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args[:3])} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base_image() -> str:
    """Debian 12 minbase from debootstrap, imported once; podman's store is the cache."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise AssertionError(f"debootstrap is missing: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="homelab-e2e-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR],
            capture_output=True,
            timeout=1800,
            check=True,
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.run(
            ["tar", "-C", str(root), "-c", "."], capture_output=True, timeout=600, check=True
        )
        podman("import", "-", BASE_IMAGE, input_bytes=tar.stdout, timeout=600)
    return BASE_IMAGE


def _config_paths(line: str) -> Iterator[Path]:
    """Absolute paths named in a `pip config debug` line (a config file, or values in one)."""
    for match in re.finditer(r"(?:file://)?(/[^\s'\",]+)", line):
        path = Path(match.group(1))
        # A local index (`.../simple`) links its files relative to itself (../../files).
        yield path.parent if path.name == "simple" else path


@functools.cache
def pip_build_options() -> tuple[str, ...]:
    """Mounts and build arguments that give a build this machine's pip setup."""
    debug = subprocess.run(
        [sys.executable, "-m", "pip", "config", "debug"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    mounts: set[Path] = set()
    for line in debug.splitlines():
        if ", exists: False" in line:
            continue
        for path in _config_paths(line.replace(", exists: True", "")):
            if path.exists() and not path.is_relative_to(HOST_CERTS) and path != Path("/"):
                mounts.add(path)
    # Keep only the outermost of nested paths (/opt/pypi covers /opt/pypi/simple).
    outer = sorted(p for p in mounts if not any(p != q and p.is_relative_to(q) for q in mounts))
    options = [opt for path in outer for opt in ("-v", f"{path}:{path}:ro")]
    # The bundle goes elsewhere: apt's ca-certificates writes /etc/ssl/certs in the build.
    bundle = HOST_CERTS / "ca-certificates.crt"
    if bundle.exists():
        options += ["-v", f"{HOST_CERTS}:{CERTS_IN_BUILD}:ro"]
        options += ["--build-arg", f"PIP_CERT={CERTS_IN_BUILD}/ca-certificates.crt"]
    return tuple(options)


@dataclass
class Build:
    tag: str
    seconds: float
    size_bytes: int


def build_image(
    tag: str,
    dockerfile: Path,
    context: Path = REPO,
    build_args: dict[str, str] | None = None,
    pip: bool = True,
) -> Build:
    """`podman build` with the layer cache, keeping HEALTHCHECK (docker format)."""
    with build_lock():
        base = ensure_base_image()
    args = {"BASE": base, **(build_args or {})}
    command = ["build", "--format", "docker", "--isolation", "chroot", "--network=host"]
    command += ["--pull=never", "--layers", "-t", tag, "-f", str(dockerfile)]
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    if pip:
        command += pip_build_options()
    with build_lock():
        before = image_id(tag)
        started = time.monotonic()
        podman(*command, str(context), timeout=BUILD_TIMEOUT)
        seconds = time.monotonic() - started
    after = image_id(tag)
    if before and before != after:  # the previous build, now untagged: by its id, if unused
        podman("rmi", before, check=False)
    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    return Build(tag, seconds, size)


def image_id(tag: str) -> str | None:
    result = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Builds are CPU-heavy and the machine is shared: another run's build finishes first."""
    with BUILD_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Container:
    id: str  # what `podman run` printed; every command names the container by it
    url: str
    pids: set[int] = field(default_factory=set)

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.id).stdout.strip()

    def running(self) -> bool:
        result = podman("inspect", "--format", "{{.State.Running}}", self.id, check=False)
        return result.returncode == 0 and result.stdout.strip() == "true"

    def logs(self) -> str:
        result = podman("logs", self.id, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def exec(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.id, *command, timeout=timeout, check=False)

    def host_processes(self) -> list[psutil.Process]:
        """The container's processes as the host sees them (its init and every descendant)."""
        pid = int(self.inspect("{{.State.Pid}}") or 0)
        if pid <= 0:
            return []
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def remember_processes(self) -> list[psutil.Process]:
        processes = self.host_processes()
        self.pids |= {p.pid for p in processes}
        return processes


def run_container(
    image: str,
    name: str,
    port: int,
    env: dict[str, str],
    volumes: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> Container:
    """Start a detached container on the host network, serving the API on `port`."""
    command = ["run", "-d", "--name", name, "--label", f"{LABEL}={OWNER}", "--network=host"]
    command += ["--shm-size=1g"]
    for key, value in {**env, "HOMELAB_SERVER__PORT": str(port)}.items():
        command += ["-e", f"{key}={value}"]
    for volume in volumes:
        command += ["-v", volume]
    container_id = podman(*command, *extra, image, timeout=300).stdout.strip().splitlines()[-1]
    CREATED_CONTAINERS.add(container_id)
    return Container(container_id, f"http://127.0.0.1:{port}")


def run_once(image: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`podman run --rm` to completion (labelled: an interrupted one is removed next run)."""
    command = ["run", "--rm", "--label", f"{LABEL}={OWNER}", "--network=host", *args, image]
    return podman(*command, check=False, timeout=timeout)


def new_volume() -> str:
    name = f"homelab-e2e-{uuid.uuid4().hex[:12]}"
    podman("volume", "create", "--label", f"{LABEL}={OWNER}", name)
    CREATED_VOLUMES.add(name)
    return name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool] | None = None
) -> None:
    """Poll `check` until true; fail with `what` after `timeout` s or when `alive` says no."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise AssertionError(f"{what}: the container exited")
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def answers(url: str, path: str, status: int = 200) -> bool:
    try:
        return httpx.get(url + path, timeout=10).status_code == status
    except httpx.HTTPError:
        return False


def wait_ready(container: Container, timeout: float = 600) -> None:
    """Poll /ready (generous: a busy box loads the first model slowly)."""
    try:
        wait_until(
            lambda: answers(container.url, "/ready"),
            timeout,
            f"container {container.id[:12]} /ready",
            alive=container.running,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- logs ---\n{container.logs()}") from None


CREATED_CONTAINERS: set[str] = set()  # ids, as `podman run` printed them
CREATED_VOLUMES: set[str] = set()


def remove_created() -> None:
    """Remove the containers and volumes this run made, by their ids (after failures too)."""
    if CREATED_CONTAINERS:
        podman("rm", "-f", "-i", "-t", "5", *sorted(CREATED_CONTAINERS), check=False, timeout=300)
        CREATED_CONTAINERS.clear()
    for volume in sorted(CREATED_VOLUMES):
        podman("volume", "rm", "-f", volume, check=False)
    CREATED_VOLUMES.clear()


def owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition("-")
    try:
        process = psutil.Process(int(pid))
        return str(int(process.create_time())) == started
    except (ValueError, psutil.NoSuchProcess):
        return False


def remove_stale() -> None:
    """What an interrupted earlier run left: labelled by a pytest process no longer alive."""
    template = f'{{{{.ID}}}} {{{{index .Labels "{LABEL}"}}}}'
    listed = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", template, check=False)
    stale = [cid for cid, _, owner in (line.partition(" ") for line in listed.stdout.splitlines())
             if not owner_alive(owner)]  # fmt: skip
    if stale:
        podman("rm", "-f", "-i", "-t", "5", *stale, check=False, timeout=300)
    volumes = podman(
        "volume", "ls", "--filter", f"label={LABEL}", "--format",
        f'{{{{.Name}}}} {{{{index .Labels "{LABEL}"}}}}', check=False,
    )  # fmt: skip
    for name, _, owner in (line.partition(" ") for line in volumes.stdout.splitlines()):
        if not owner_alive(owner):
            podman("volume", "rm", "-f", name, check=False)


def running_created() -> list[str]:
    """Which of this run's containers still run."""
    if not CREATED_CONTAINERS:
        return []
    result = podman("ps", "-q", "--no-trunc", check=False)
    return sorted(set(result.stdout.split()) & CREATED_CONTAINERS)


def alive(pids: set[int]) -> list[int]:
    """Pids still running (zombies awaiting their reaper count as gone)."""
    left = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
    return left


def json_of(response: httpx.Response) -> dict[str, object]:
    body = json.loads(response.text)
    assert isinstance(body, dict)
    return body
