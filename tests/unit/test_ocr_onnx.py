"""The PP-OCRv4 graph rewrite: fewer nodes, the same outputs (real bundled models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from frontend.tasks.ocr import DET_MODEL, REC_MODEL
from frontend.tasks.ocr_onnx import HARDSWISH_OPSET, fuse, fused_model_bytes


def model_path(name: str) -> str:
    import rapidocr_onnxruntime

    return str(Path(rapidocr_onnxruntime.__file__).parent / "models" / name)


def session(model: str | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("name", "shape"), [(REC_MODEL, (2, 3, 48, 160)), (DET_MODEL, (1, 3, 96, 128))]
)
def test_fused_model_gives_the_same_outputs(name: str, shape: tuple[int, ...]) -> None:
    path = model_path(name)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    [expected] = session(path).run(None, {"x": x})
    [found] = session(fused_model_bytes(path)).run(None, {"x": x})
    assert found.shape == expected.shape
    np.testing.assert_allclose(found, expected, atol=1e-4)


def test_fuse_rewrites_every_block() -> None:
    model = onnx.load(model_path(REC_MODEL))
    before = [node.op_type for node in model.graph.node]
    done = fuse(model)
    after = [node.op_type for node in model.graph.node]
    # 28 hard-swish blocks, each Add -> Clip -> Mul -> Div, become HardSwish nodes.
    assert done["hardswish"] == before.count("Clip") == after.count("HardSwish") == 28
    assert "Clip" not in after and after.count("Div") == before.count("Div") - 28
    assert done["conv_affine"] > 0 and done["next_conv"] > 0
    assert after.count("Conv") == before.count("Conv")
    assert len(after) < len([op for op in before if op != "Constant"]) - 100
    opset = next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))
    assert opset == HARDSWISH_OPSET
    onnx.checker.check_model(model)
