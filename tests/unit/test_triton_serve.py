"""frontend.triton.serve builds every tritonserver command line: embedded mode and containers."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from frontend.triton import serve
from frontend.triton.embedded import EmbeddedTriton, TritonPorts


def test_embedded_command_binds_loopback_on_its_ports_and_restricts_the_repository_api(
    tmp_path: Path,
) -> None:
    triton = EmbeddedTriton(
        [tmp_path / "a", tmp_path / "b"], tmp_path, TritonPorts(11, 12, 13), admin_key="k3y"
    )

    command = triton.command()

    assert command[0] == str(triton.install.server_binary)
    assert command[1:3] == [
        f"--model-repository={tmp_path / 'a'}",
        f"--model-repository={tmp_path / 'b'}",
    ]
    assert sorted(command[3:]) == sorted(
        [
            f"--backend-directory={tmp_path / 'backends'}",
            # this data dir's own shared-memory names, so a later start can reap what it left
            f"--backend-config=python,shm-region-prefix-name={triton.shm_prefix}",
            "--model-control-mode=explicit",
            "--disable-auto-complete-config",
            "--strict-readiness=false",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--metrics-address=127.0.0.1",
            "--http-port=11",
            "--grpc-port=12",
            "--metrics-port=13",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0",
            "--exit-timeout-secs=10",
            "--log-verbose=0",
            "--grpc-restricted-protocol=model-repository:admin-key=k3y",
            "--http-restricted-api=model-repository:admin-key=k3y",
        ]
    )


def test_embedded_command_without_a_key_leaves_the_repository_api_open(tmp_path: Path) -> None:
    command = EmbeddedTriton([tmp_path], tmp_path, TritonPorts(1, 2, 3)).command()

    assert not [flag for flag in command if "restricted" in flag]


def test_container_command_reads_the_repository_and_key_from_the_environment() -> None:
    env = {"TRITON_ADMIN_KEY": "s3cret", "HOMELAB_TRITON_REPOSITORY": "/srv/repo"}

    command = serve.container_command(env, extra=["--log-verbose=1"])

    assert command == [
        "tritonserver",
        "--model-repository=/srv/repo",
        *serve.SHARED_FLAGS,
        "--grpc-restricted-protocol=model-repository:admin-key=s3cret",
        "--http-restricted-api=model-repository:admin-key=s3cret",
        "--log-verbose=1",
    ]
    assert serve.container_command({})[1] == "--model-repository=/data/triton/repository"


def test_main_prints_the_command_and_passes_unknown_flags_to_tritonserver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert serve.main(["--cpu-only", "--log-verbose=1"], env={}) == 0

    printed = shlex.split(capsys.readouterr().out)
    assert printed == serve.container_command({}, cpu_only=True, extra=["--log-verbose=1"])
    assert set(serve.CPU_ONLY_FLAGS) <= set(printed)


def test_main_exec_creates_the_repository_and_execs_tritonserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    execed: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(serve.os, "execvp", lambda file, args: execed.append((file, args)))
    repository = tmp_path / "fresh" / "repository"

    serve.main(["--exec"], env={"HOMELAB_TRITON_REPOSITORY": str(repository)})

    assert repository.is_dir()
    assert execed == [
        ("tritonserver", serve.container_command({"HOMELAB_TRITON_REPOSITORY": str(repository)}))
    ]
    assert "TRITON_ADMIN_KEY is not set" in capsys.readouterr().err
