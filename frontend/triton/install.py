"""Where the nvidia-pytriton wheel keeps tritonserver and its Python-backend stub, and whether
this host can run them (clear errors instead of a crashing stub)."""

from __future__ import annotations

import importlib.metadata
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path


class TritonSetupError(RuntimeError):
    """The embedded Triton cannot run on this host; the message says why and what to do."""


@dataclass(frozen=True)
class TritonInstall:
    server_binary: Path
    python_backend_dir: Path
    stub: Path
    bundled_libs: Path
    libpython_dir: Path


def find_triton_install(check_numpy: bool = True) -> TritonInstall:
    """Locate the wheel's binaries and check the host can run its Python-backend stub.

    `check_numpy=False` when the stubs run another Python than this one (tools/gpu_check)."""
    try:
        import pytriton
    except ImportError:
        raise TritonSetupError(
            "the embedded Triton needs the 'nvidia-pytriton' package "
            "(pip install nvidia-pytriton==0.7.0), or set triton.url to an external server"
        ) from None
    root = Path(pytriton.__file__).parent / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonSetupError(f"nvidia-pytriton ships no Python-backend stub for Python {version}")
    numpy_version = importlib.metadata.version("numpy")
    if check_numpy and int(numpy_version.split(".")[0]) >= 2:
        # Measured on a GPU host: the 0.7.0 stub aborts on the first string tensor under numpy 2.
        raise TritonSetupError(
            f"the Triton Python stub of nvidia-pytriton 0.7.0 needs numpy<2 (found "
            f"{numpy_version}): pip install 'numpy<2' in this environment"
        )
    libdir = find_libpython_dir(version)
    if libdir is None:
        raise TritonSetupError(
            f"the Triton Python stub needs libpython{version}.so.1.0 (the shared library of "
            f"this interpreter): on Debian 'apt-get install libpython{version}', with pyenv "
            "build Python with PYTHON_CONFIGURE_OPTS=--enable-shared"
        )
    install = TritonInstall(
        server_binary=root / "bin" / "tritonserver",
        python_backend_dir=root / "backends" / "python",
        stub=stub,
        bundled_libs=root.parent.parent / "nvidia_pytriton.libs",
        libpython_dir=libdir,
    )
    if not install.server_binary.is_file():
        raise TritonSetupError(f"tritonserver binary missing at {install.server_binary}")
    return install


def find_libpython_dir(version: str) -> Path | None:
    """The directory with this interpreter's shared libpython (Debian keeps it off LIBDIR)."""
    name = f"libpython{version}.so.1.0"
    candidates = [sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LIBPL")]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        candidates.append(f"/usr/lib/{multiarch}")
    for candidate in candidates:
        if candidate and (Path(str(candidate)) / name).exists():
            return Path(str(candidate))
    return None
