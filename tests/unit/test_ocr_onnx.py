"""The PP-OCRv4 graph rewrite (fewer nodes, the same outputs) and the int8 recogniser, on the
real bundled models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from frontend.tasks import ocr_rapid
from frontend.tasks.ocr import RapidOcrEngine, load_ocr_engine
from frontend.tasks.ocr_onnx import HARDSWISH_OPSET, fuse, fused_model_bytes
from frontend.tasks.ocr_rapid import DET_MODEL, REC_MODEL
from tests import ocr_pages


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


def test_int8_recogniser_by_default_fp32_with_engine_onnx(rapid_pair: tuple) -> None:
    int8, fp32 = rapid_pair
    assert int8.precision == "int8" and fp32.precision == "fp32"
    image, truth = ocr_pages.two_columns()
    [quantized], [full] = int8.read([image]), fp32.read([image])
    assert quantized.text == full.text and ocr_pages.cer(quantized.text, truth) <= 0.01


def test_int8_recogniser_that_misreads_the_probe_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No misread allowed at all (not even 0 of 24 lines): the quantized model is refused, a
    # marker keeps later loads from quantizing again, and recognition stays fp32.
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(ocr_rapid, "INT8_PROBE_MISREAD", -1)
    engine = load_ocr_engine("rapidocr/PP-OCRv4")
    assert isinstance(engine, RapidOcrEngine) and engine.precision == "fp32"
    [marker] = (tmp_path / "rapidocr").glob("*.refused")
    assert (tmp_path / "rapidocr" / marker.name.replace(".refused", ".onnx")).exists()
    monkeypatch.setattr(ocr_rapid, "INT8_PROBE_MISREAD", 24)
    assert load_ocr_engine("rapidocr/PP-OCRv4").precision == "fp32"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def rapid_pair() -> tuple[RapidOcrEngine, RapidOcrEngine]:
    int8 = load_ocr_engine("rapidocr/PP-OCRv4")
    fp32 = load_ocr_engine("rapidocr/PP-OCRv4", engine="onnx")
    assert isinstance(int8, RapidOcrEngine) and isinstance(fp32, RapidOcrEngine)
    return int8, fp32


def test_unwritable_cache_keeps_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("HF_HOME", str(blocked))  # HF_HOME/rapidocr cannot be created
    engine = load_ocr_engine("rapidocr/PP-OCRv4")
    assert isinstance(engine, RapidOcrEngine) and engine.precision == "fp32"
    [result] = engine.read([ocr_pages.table()[0]])
    assert ocr_pages.cer(result.text, ocr_pages.table()[1]) <= 0.02


def test_lines_recognised_in_parallel_keep_their_order(rapid_pair: tuple) -> None:
    # threads=2: a page's lines are shared out to 2 workers (longest first) and put back.
    int8, _ = rapid_pair
    parallel = load_ocr_engine("rapidocr/PP-OCRv4", threads=2)
    image, truth = ocr_pages.receipt()
    [alone], [shared] = int8.read([image]), parallel.read([image])
    assert [line.text for line in shared.lines] == [line.text for line in alone.lines]
    assert [line.box for line in shared.lines] == [line.box for line in alone.lines]
    assert ocr_pages.cer(shared.text, truth) <= 0.01
