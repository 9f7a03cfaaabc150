"""Run the `tritonserver` shipped in the nvidia-pytriton wheel as a supervised child process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from frontend.core.config import Settings
from frontend.models.stubs import is_alive
from frontend.triton import reaper as reaper_script
from frontend.triton.install import TritonSetupError, find_triton_install
from frontend.triton.leftovers import end_leftovers, shm_prefix
from frontend.triton.serve import tritonserver_command

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TritonPorts:
    http: int
    grpc: int
    metrics: int

    @classmethod
    def choose(
        cls, http: int = 0, grpc: int = 0, metrics: int = 0, avoid: frozenset[int] = frozenset()
    ) -> TritonPorts:
        """The given ports, free ones for those left 0: three different ports, none of `avoid`
        (the API's own port, which uvicorn binds only after the startup that starts Triton)."""
        taken = set(avoid) | {http, grpc, metrics}
        chosen = []
        for port in (http, grpc, metrics):
            for _ in range(100):
                if port:
                    break
                if (found := free_port()) not in taken:
                    port = found
            taken.add(port)
            chosen.append(port)
        return cls(*chosen)


class EmbeddedTriton:
    """One tritonserver process bound to loopback, restarted if it dies, stopped with its stubs.

    It runs under `frontend.triton.reaper` (`process` is the reaper), which ends tritonserver's
    whole tree, stubs included, when tritonserver exits or this process dies."""

    def __init__(
        self,
        repositories: list[Path],
        work_dir: Path,
        ports: TritonPorts,
        env: dict[str, str] | None = None,
        log_verbose: int = 0,
        admin_key: str | None = None,
        check_numpy: bool = True,
    ) -> None:
        self.install = find_triton_install(check_numpy)
        # With a key, Triton's model-repository API (load/unload) answers only to callers that
        # send it; inference, health, metadata and statistics stay open.
        self.admin_key = admin_key
        self.repositories = repositories
        self.work_dir = work_dir
        self.ports = ports
        self.extra_env = env or {}
        self.log_verbose = log_verbose
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._up = False  # ready, and not known to be dead or restarting since

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.ports.http}"

    def _backend_dir(self) -> Path:
        """A backend dir whose python/ holds the wheel's backend plus the stub for this Python."""
        backends = self.work_dir / "backends"
        python_dir = backends / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        links = {
            "libtriton_python.so": self.install.python_backend_dir / "libtriton_python.so",
            "triton_python_backend_utils.py": self.install.python_backend_dir
            / "triton_python_backend_utils.py",
            "triton_python_backend_stub": self.install.stub,
        }
        for name, target in links.items():
            link = python_dir / name
            if link.is_symlink() and link.resolve() == target.resolve():
                continue
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        return backends

    def command(self) -> list[str]:
        return tritonserver_command(
            self.repositories,
            binary=str(self.install.server_binary),
            backend_directory=self._backend_dir(),
            loopback_ports=(self.ports.http, self.ports.grpc, self.ports.metrics),
            cpu_only=True,  # keeps a GPU-less host quiet; models still use a GPU they find
            log_verbose=self.log_verbose,
            admin_key=self.admin_key,
            # Regions named after the data dir: a start can tell its leftovers from the
            # regions of other Tritons on the host.
            extra=[f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}"],
        )

    @property
    def shm_prefix(self) -> str:
        return shm_prefix(self.work_dir)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The stub runs Python isolated (PYTHONPATH ignored) and finds its prefix from the first
        # python3 on PATH, so the running interpreter's bin/ goes first.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        libs = [str(self.install.libpython_dir), str(self.install.bundled_libs)]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env.pop("PYTHONPATH", None)
        env.update(self.extra_env)
        return env

    @property
    def pid_file(self) -> Path:
        return self.work_dir / "tritonserver.pid"

    def _spawn(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # The old tree, whatever is left of it, ends before a new one starts (restarts too).
        self._end_tree()
        stop_leftover(self.pid_file, self.work_dir)
        end_leftovers(self.work_dir)
        log_path = self.work_dir / "tritonserver.log"
        # Run as a file in isolated mode (-I: no PYTHONPATH, nor the script's own folder, whose
        # codecs.py would shadow the stdlib's): it needs the standard library only.
        reaper = [
            sys.executable,
            "-I",
            reaper_script.__file__,
            f"--parent={os.getpid()}",
            f"--work-dir={self.work_dir.resolve()}",
            f"--shm-prefix={self.shm_prefix}",
        ]
        with open(log_path, "ab") as log:
            # A new session makes the reaper, tritonserver and its stubs one process group to
            # stop together; the neutral cwd keeps folders of the caller's cwd off the stubs'
            # sys.path. The reaper's stdin stays open: its end tells the reaper we are gone.
            self.process = subprocess.Popen(
                reaper,
                cwd=self.work_dir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
                start_new_session=True,
            )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(self.command()).encode() + b"\n")
        self.process.stdin.flush()
        self.pid_file.write_text(f"{self.process.pid}\n")
        logger.info(
            "started tritonserver under reaper pid %s (http %s, grpc %s, metrics %s); log: %s",
            self.process.pid,
            self.ports.http,
            self.ports.grpc,
            self.ports.metrics,
            log_path,
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{self.http_url}/v2/health/ready"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.is_running():
                    code = self.process.returncode if self.process else "?"
                    raise TritonSetupError(
                        f"tritonserver exited with code {code}; "
                        f"see {self.work_dir / 'tritonserver.log'}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TritonSetupError(f"tritonserver not ready after {timeout:.0f} s")

    async def start(self, timeout: float = 60.0) -> None:
        self._stopping = False
        self._spawn()
        await self.wait_ready(timeout)
        self._up = True
        self._supervisor = asyncio.create_task(self._supervise(timeout), name="triton-supervisor")

    async def _supervise(self, timeout: float) -> None:
        backoff = 1.0
        while not self._stopping:
            await asyncio.sleep(0.5)
            if self._stopping or self.is_running():
                continue
            self._up = False
            code = self.process.returncode if self.process else None
            logger.error("tritonserver exited (code %s); restarting in %.0f s", code, backoff)
            self._end_tree()  # its stubs, if any outlived it
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            self.restarts += 1
            try:
                self._spawn()
                await self.wait_ready(timeout)
                self._up = True
                backoff = 1.0
                logger.info("tritonserver is back (restart %d)", self.restarts)
            except (TritonSetupError, OSError) as exc:
                logger.error("tritonserver restart failed: %s", exc)
                backoff = min(backoff * 2, 30.0)

    async def restart(self) -> None:
        """Kill tritonserver (its state is stuck); the supervisor starts a fresh one."""
        logger.error("restarting tritonserver (pid %s)", self.process.pid if self.process else "-")
        self._up = False
        self._kill_group(signal.SIGKILL)

    async def wait_back(self, timeout: float) -> bool:
        """True once tritonserver is running and ready (at once if it never went down); False
        after `timeout` seconds or when it is being stopped. Requests that find it restarting
        wait here instead of failing."""
        deadline = time.monotonic() + timeout
        while not self._stopping:
            if self._up and self.is_running():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return False

    def _kill_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _end_tree(self) -> None:
        """SIGKILL the reaper's group (reaper, tritonserver, stubs) and collect the reaper."""
        if self.process is None:
            return
        self._kill_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    @property
    def server_pid(self) -> int | None:
        """tritonserver's own pid (the reaper's child), None when it is not running."""
        if self.process is None:
            return None
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children():
                if child.name() == "tritonserver":
                    return int(child.pid)
        return None

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole group (server and stubs), SIGKILL what is left after `timeout`."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self.process is None:
            return
        # The reaper passes SIGTERM on to tritonserver and, once it has exited, ends the stubs.
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        self._end_tree()  # whatever did not stop in time
        await asyncio.to_thread(end_leftovers, self.work_dir)
        self.pid_file.unlink(missing_ok=True)
        logger.info("tritonserver stopped")


def stop_leftover(pid_file: Path, work_dir: Path, timeout: float = 10.0) -> bool:
    """Stop a tritonserver an earlier run on this data dir left behind (its pid file names it or
    its reaper, and the command line must point at this work dir: a reused pid is left alone)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:  # gone (or a zombie): nothing to stop
        pid_file.unlink(missing_ok=True)
        return False
    server = "tritonserver" in cmdline and f"{work_dir.resolve()}/backends" in cmdline
    reaper = "triton/reaper.py" in cmdline and f"--work-dir={work_dir.resolve()}" in cmdline
    if not (server or reaper):
        pid_file.unlink(missing_ok=True)
        return False
    logger.warning("stopping tritonserver pid %d left running by an earlier start", pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def triton_environment(settings: Settings) -> dict[str, str]:
    """What the stub processes need: the HF cache, and never a trip to the hub at load time."""
    return {
        "HF_HOME": str(settings.models_dir.resolve()),
        "HF_HUB_CACHE": str((settings.models_dir / "hub").resolve()),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
