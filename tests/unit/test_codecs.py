"""frontend.triton.codecs: texts as [n, 1] BYTES tensors, embeddings as float32 matrices."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import deserialize_bytes_tensor

from frontend.triton.codecs import fp32_matrix, texts_input

TEXTS = ["hello", "héllo", "emoji 🦙🚀", "中文字符 日本語 한국어", "", "tab\tnew\nline", "a" * 5000]


def make_result(*outputs: tuple[str, str, list[int], bytes]) -> grpcclient.InferResult:
    """An InferResult as the gRPC client builds it from a server response."""
    response = service_pb2.ModelInferResponse(model_name="m", model_version="1")
    for name, datatype, shape, raw in outputs:
        tensor = response.outputs.add()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape.extend(shape)
        response.raw_output_contents.append(raw)
    return grpcclient.InferResult(response)


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param(TEXTS, id="mixed"),
        pytest.param(["héllo"], id="single"),
        pytest.param(["🦙"] * 3, id="repeated-emoji"),
    ],
)
def test_texts_input_is_an_n_by_1_bytes_tensor(texts: list[str]) -> None:
    tensor = texts_input(texts)

    assert tensor.name() == "TEXT"
    assert tensor.datatype() == "BYTES"
    assert tensor.shape() == [len(texts), 1]
    decoded = deserialize_bytes_tensor(tensor._get_content())
    assert [item.decode("utf-8") for item in decoded] == texts
    assert [bytes(item) for item in decoded] == [t.encode("utf-8") for t in texts]


def test_texts_input_round_trips_through_an_infer_result() -> None:
    """What the server receives decodes back to the same strings, row by row."""
    tensor = texts_input(TEXTS, name="PROMPT")
    assert tensor.name() == "PROMPT"

    result = make_result(("PROMPT", "BYTES", tensor.shape(), tensor._get_content()))
    array = result.as_numpy("PROMPT")

    assert array.shape == (len(TEXTS), 1)
    assert [row[0].decode("utf-8") for row in array] == TEXTS


def test_texts_input_keeps_utf8_byte_lengths() -> None:
    tensor = texts_input(["é", "🦙", "中"])
    raw = tensor._get_content()

    # Each element is a 4-byte little-endian length followed by the UTF-8 bytes.
    lengths = []
    offset = 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "little")
        lengths.append(size)
        offset += 4 + size
    assert lengths == [2, 4, 3]


def fp32(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def test_fp32_matrix_accepts_a_matching_matrix() -> None:
    expected = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    result = make_result(("EMBEDDING", "FP32", [3, 4], fp32(expected)))

    matrix = fp32_matrix(result, "EMBEDDING", rows=3)

    assert matrix.dtype == np.float32
    assert matrix.shape == (3, 4)
    np.testing.assert_array_equal(matrix, expected)


def test_fp32_matrix_converts_half_precision() -> None:
    expected = np.array([[0.5, -1.25], [2.0, 3.5]], dtype=np.float16)
    result = make_result(("EMBEDDING", "FP16", [2, 2], expected.tobytes()))

    matrix = fp32_matrix(result, "EMBEDDING", rows=2)

    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, expected.astype(np.float32))


def test_fp32_matrix_picks_the_named_output() -> None:
    other = np.zeros((2, 2), dtype=np.float32)
    wanted = np.ones((2, 3), dtype=np.float32)
    result = make_result(
        ("OTHER", "FP32", [2, 2], fp32(other)),
        ("EMBEDDING", "FP32", [2, 3], fp32(wanted)),
    )

    np.testing.assert_array_equal(fp32_matrix(result, "EMBEDDING", rows=2), wanted)


@pytest.mark.parametrize(
    ("shape", "rows", "match"),
    [
        pytest.param([2, 4], 3, r"shape \(2, 4\), expected \(3, d\)", id="too-few-rows"),
        pytest.param([4, 2], 3, r"shape \(4, 2\), expected \(3, d\)", id="too-many-rows"),
        pytest.param([8], 2, r"shape \(8,\)", id="one-dimensional"),
        pytest.param([2, 2, 2], 2, r"shape \(2, 2, 2\)", id="three-dimensional"),
        pytest.param([1, 2, 4], 1, r"shape \(1, 2, 4\)", id="extra-leading-axis"),
    ],
)
def test_fp32_matrix_rejects_wrong_shapes(shape: list[int], rows: int, match: str) -> None:
    data = np.ones(int(np.prod(shape)), dtype=np.float32)
    result = make_result(("EMBEDDING", "FP32", shape, fp32(data)))

    with pytest.raises(ValueError, match=match):
        fp32_matrix(result, "EMBEDDING", rows=rows)


def test_fp32_matrix_rejects_a_missing_output() -> None:
    result = make_result(("OTHER", "FP32", [1, 2], fp32(np.ones(2))))

    with pytest.raises(ValueError, match="no output EMBEDDING"):
        fp32_matrix(result, "EMBEDDING", rows=1)
