"""Each image installs its part of pyproject.toml; the API runs without the model libraries."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.deploy_files import REPO
from tools.image_requirements import (
    EMBEDDED_PACKAGES,
    MODEL_PACKAGES,
    SHARED_WITH_MODELS,
    dependencies,
    name_of,
    requirements,
)


def names(lines: list[str]) -> set[str]:
    return {name_of(line) for line in lines}


def test_every_named_package_is_a_project_dependency() -> None:
    # A renamed or dropped dependency must be renamed here too, or images would miss it.
    assert names(dependencies()) >= MODEL_PACKAGES | EMBEDDED_PACKAGES | SHARED_WITH_MODELS


def test_frontend_image_gets_no_model_library_and_no_embedded_triton() -> None:
    frontend = names(requirements("frontend"))

    assert not frontend & (MODEL_PACKAGES | EMBEDDED_PACKAGES)
    assert {"fastapi", "tritonclient", "playwright", "huggingface-hub"} <= frontend


def test_triton_image_gets_the_model_libraries_with_the_project_pins() -> None:
    triton = requirements("triton")
    pins = {name_of(d): d for d in dependencies()}

    assert names(triton) == (MODEL_PACKAGES - {"torch"}) | SHARED_WITH_MODELS
    assert all(line == pins[name_of(line)] for line in triton)
    assert requirements("torch") == [pins["torch"]]


def test_name_of_normalises_requirements() -> None:
    assert name_of("huggingface_hub>=2.0") == "huggingface-hub"
    assert name_of("tritonclient[grpc,http]>=2.50") == "tritonclient"
    assert name_of("Sentence.Transformers ==3") == "sentence-transformers"


def test_command_line_prints_one_requirement_per_line() -> None:
    result = subprocess.run(
        [sys.executable, "tools/image_requirements.py", "torch"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )

    assert result.stdout.splitlines() == requirements("torch")


BLOCKED_IMPORTS = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {"torch", "transformers", "sentence_transformers", "onnxruntime", "onnx",
               "rapidocr_onnxruntime", "cv2", "pytriton", "tesserocr"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in the frontend image")
            return None

    sys.meta_path.insert(0, Block())
    from frontend.app import create_app
    from frontend.cli import build_parser
    from frontend.core.config import load_settings
    create_app(load_settings(sys.argv[1]))
    build_parser()
    print("ok")
    """
)


def test_the_api_imports_and_builds_without_model_libraries() -> None:
    """The frontend image has none of MODEL_PACKAGES: nothing the API imports may need them."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORTS, str(REPO / "config.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
