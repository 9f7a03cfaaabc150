"""The tritonserver command line, in one place, for every way Homelab AI runs Triton.

The embedded mode (`frontend.triton.embedded`) builds its command here, and the Triton
container (Dockerfile.triton, both compose files, the Kubernetes manifests) runs

    python3 -m frontend.triton.serve --exec [--cpu-only] [tritonserver flags...]

which execs tritonserver with the same shared flags plus the container's own: the model
repository (`HOMELAB_TRITON_REPOSITORY`, default /data/triton/repository) and the admin key
restriction (`TRITON_ADMIN_KEY`). Flags it does not know go to tritonserver unchanged.

Standard library only: the Triton image installs `frontend` without its dependencies.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# The model-repository header the frontend sends (frontend.triton.replicas imports it).
ADMIN_KEY_HEADER = "admin-key"
CONTAINER_REPOSITORY = Path("/data/triton/repository")
REPOSITORY_VARIABLE = "HOMELAB_TRITON_REPOSITORY"
ADMIN_KEY_VARIABLE = "TRITON_ADMIN_KEY"

# Every Triton Homelab AI runs, embedded or in a container.
SHARED_FLAGS = (
    # The frontend loads and unloads models (lazy load, idle unload, LRU eviction).
    "--model-control-mode=explicit",
    # Otherwise every model.py runs twice at load.
    "--disable-auto-complete-config",
    # One broken model must not make the server unready.
    "--strict-readiness=false",
    "--exit-timeout-secs=10",
)
# No GPU (or none wanted): no pinned or CUDA memory pools, no GPU metrics.
CPU_ONLY_FLAGS = (
    "--allow-gpu-metrics=false",
    "--pinned-memory-pool-byte-size=0",
    "--cuda-memory-pool-byte-size=0:0",
)


def loopback_flags(http_port: int, grpc_port: int, metrics_port: int) -> list[str]:
    """Bind every endpoint to 127.0.0.1 on the given ports (the embedded mode)."""
    return [
        "--http-address=127.0.0.1",
        "--grpc-address=127.0.0.1",
        "--metrics-address=127.0.0.1",
        f"--http-port={http_port}",
        f"--grpc-port={grpc_port}",
        f"--metrics-port={metrics_port}",
    ]


def restricted_api_flags(admin_key: str | None) -> list[str]:
    """With a key, Triton's model-repository API (load/unload) answers only to callers that
    send it; inference, health, metadata and statistics stay open."""
    if not admin_key:
        return []
    restriction = f"model-repository:{ADMIN_KEY_HEADER}={admin_key}"
    return [f"--grpc-restricted-protocol={restriction}", f"--http-restricted-api={restriction}"]


def tritonserver_command(
    repositories: Sequence[Path | str],
    *,
    binary: str = "tritonserver",
    backend_directory: Path | None = None,
    loopback_ports: tuple[int, int, int] | None = None,
    cpu_only: bool = False,
    log_verbose: int | None = None,
    admin_key: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The whole command line; `loopback_ports` is (http, grpc, metrics)."""
    cmd = [binary, *(f"--model-repository={repo}" for repo in repositories)]
    if backend_directory is not None:
        cmd.append(f"--backend-directory={backend_directory}")
    cmd += SHARED_FLAGS
    if loopback_ports is not None:
        cmd += loopback_flags(*loopback_ports)
    if cpu_only:
        cmd += CPU_ONLY_FLAGS
    if log_verbose is not None:
        cmd.append(f"--log-verbose={log_verbose}")
    cmd += restricted_api_flags(admin_key)
    cmd += extra
    return cmd


def container_command(
    env: Mapping[str, str], cpu_only: bool = False, extra: Sequence[str] = ()
) -> list[str]:
    """What the Triton container runs, given its environment."""
    repository = env.get(REPOSITORY_VARIABLE) or str(CONTAINER_REPOSITORY)
    return tritonserver_command(
        [repository], cpu_only=cpu_only, admin_key=env.get(ADMIN_KEY_VARIABLE), extra=extra
    )


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m frontend.triton.serve",
        description="Print (or exec) the tritonserver command line of the Triton container. "
        "Other flags are passed to tritonserver.",
        allow_abbrev=False,
    )
    parser.add_argument("--exec", action="store_true", help="exec tritonserver instead of printing")
    parser.add_argument(
        "--cpu-only", action="store_true", help="no pinned or CUDA memory pools, no GPU metrics"
    )
    return parser.parse_known_args(list(argv))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    cmd = container_command(env, cpu_only=args.cpu_only, extra=extra)
    if not args.exec:
        print(shlex.join(cmd))
        return 0
    if not env.get(ADMIN_KEY_VARIABLE):
        print(
            f"warning: {ADMIN_KEY_VARIABLE} is not set: Triton's model-repository API (load, "
            "unload) answers to every caller that reaches it",
            file=sys.stderr,
        )
    # Triton refuses to start on a model repository that does not exist; on a fresh volume
    # the frontend has not written it yet.
    Path(cmd[1].removeprefix("--model-repository=")).mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)  # pragma: no cover - replaces this process


if __name__ == "__main__":
    sys.exit(main())
