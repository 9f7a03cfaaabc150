"""Print the pip requirements of one container image, read from pyproject.toml.

pyproject.toml is the one list of dependencies and pins. The images need different parts
of it: the API container (Dockerfile.frontend) never runs a model, the Triton container
(Dockerfile.triton) runs only the model code (`frontend.tasks`), and the all-in-one image
(Dockerfile) runs everything, its Triton from the nvidia-pytriton wheel:

    python tools/image_requirements.py frontend   # the API: no torch, no model libraries
    python tools/image_requirements.py torch      # torch alone (installed first, its own index)
    python tools/image_requirements.py triton     # the model libraries, torch excepted
    python tools/image_requirements.py embedded   # the wheel's tritonserver (nvidia-pytriton)
    python tools/image_requirements.py all        # every dependency, torch excepted
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# Libraries only the model code imports (inside Triton's Python-backend stubs).
MODEL_PACKAGES = frozenset(
    {
        "torch",
        "transformers",
        "sentence-transformers",
        "onnxruntime",
        "onnx",
        "rapidocr-onnxruntime",
        "opencv-python",
        "tesserocr",
    }
)
# The embedded tritonserver: the all-in-one image runs it, and Dockerfile.triton when built on
# a plain Debian base instead of NVIDIA's Triton image.
EMBEDDED_PACKAGES = frozenset({"nvidia-pytriton"})
# What the model code needs besides MODEL_PACKAGES (pins from pyproject.toml).
SHARED_WITH_MODELS = frozenset({"numpy", "pillow", "huggingface-hub"})


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement ("Foo_Bar[x]>=1" -> "foo-bar")."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return [str(item) for item in data["project"]["dependencies"]]


def requirements(role: str, pyproject: Path = PYPROJECT) -> list[str]:
    deps = dependencies(pyproject)
    if role == "frontend":
        return [d for d in deps if name_of(d) not in MODEL_PACKAGES | EMBEDDED_PACKAGES]
    if role == "torch":
        return [d for d in deps if name_of(d) == "torch"]
    if role == "triton":
        wanted = (MODEL_PACKAGES - {"torch"}) | SHARED_WITH_MODELS
        return [d for d in deps if name_of(d) in wanted]
    if role == "embedded":
        return [d for d in deps if name_of(d) in EMBEDDED_PACKAGES]
    if role == "all":
        return [d for d in deps if name_of(d) != "torch"]
    raise ValueError(f"unknown image role {role!r}: frontend, torch, triton, embedded or all")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    try:
        lines = requirements(argv[0])
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
