"""The thin model.py entry points and the batch loop they share, on a stand-in for Triton's
stub-only `triton_python_backend_utils` (RapidOCR runs for real)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frontend.tasks.common import load_task, run_batch
from tests.images import render_text

ROOT = Path(__file__).resolve().parents[2]


class Error:
    def __init__(self, message: str) -> None:
        self.message = message


class Response:
    def __init__(self, output_tensors: list[Any] | None = None, error: Error | None = None):
        self.output_tensors, self.error = output_tensors, error


class Tensor:
    def __init__(self, name: str, data: np.ndarray) -> None:
        self.name, self.data = name, data

    def as_numpy(self) -> np.ndarray:
        return self.data


class Request:
    def __init__(self, tensors: dict[str, np.ndarray], parameters: dict[str, Any] | None = None):
        self.tensors, self._parameters = tensors, parameters or {}

    def parameters(self) -> str:
        return json.dumps(self._parameters)


@pytest.fixture
def pb(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    logged: list[str] = []
    module = types.SimpleNamespace(
        TritonError=Error,
        InferenceResponse=Response,
        Tensor=Tensor,
        get_input_tensor_by_name=lambda request, name: (
            Tensor(name, request.tensors[name]) if name in request.tensors else None
        ),
        Logger=types.SimpleNamespace(log_info=logged.append, log_error=logged.append),
        logged=logged,
    )
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    return module


def entry_point(task: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"model_{task}", ROOT / "model_repository" / task / "1" / "model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TritonPythonModel()


def args(hf_model: str, **parameters: str) -> dict[str, Any]:
    config = {"parameters": {k: {"string_value": v} for k, v in parameters.items()}}
    config["parameters"]["hf_model"] = {"string_value": hf_model}
    return {
        "model_config": json.dumps(config),
        "model_name": "m",
        "model_instance_kind": "CPU",
        "model_instance_device_id": "0",
    }


def test_run_batch_groups_splits_back_and_fails_only_bad_requests(
    pb: types.SimpleNamespace,
) -> None:
    calls: list[tuple[list[int], Any]] = []

    def infer(items: list[int], key: Any) -> list[int]:
        calls.append((items, key))
        return [item * 10 for item in items]

    def read(request: Request) -> list[int]:
        if "X" not in request.tensors:
            raise ValueError("X is missing")
        return list(request.tensors["X"])

    requests = [
        Request({"X": np.array([1, 2])}, {"k": 1}),
        Request({}),
        Request({"X": np.array([3])}, {"k": 2}),
        Request({"X": np.array([4])}, {"k": 1}),
    ]
    responses = run_batch(
        requests,
        read,
        infer,
        write=lambda out: [list(out)],
        group_key=lambda r: json.loads(r.parameters()).get("k"),
    )
    assert calls == [([1, 2, 4], 1), ([3], 2)]  # one call per group, in request order
    assert [r.output_tensors for r in responses] == [[[10, 20]], None, [[30]], [[40]]]
    assert responses[1].error.message == "X is missing"


def test_run_batch_fails_only_the_group_whose_inference_raised(pb: types.SimpleNamespace) -> None:
    def infer(items: list[int], key: Any) -> list[int]:
        if key == "bad":
            raise RuntimeError("boom /secret/path")
        return items

    requests = [Request({"X": np.array([1])}, {"k": "bad"}), Request({"X": np.array([2])})]
    responses = run_batch(
        requests,
        lambda r: list(r.tensors["X"]),
        infer,
        write=lambda out: [list(out)],
        group_key=lambda r: json.loads(r.parameters()).get("k"),
        name="caption",
    )
    assert responses[0].error.message == "caption failed"  # no exception text to the client
    assert responses[1].output_tensors == [[2]]
    assert any("boom" in line for line in pb.logged)


def test_load_task_passes_only_given_parameters_the_factory_takes(
    pb: types.SimpleNamespace,
) -> None:
    seen: dict[str, Any] = {}

    def factory(hf_model: str, threads: int = 1, device: str = "cpu", num_beams: int = 3) -> str:
        seen.update(hf_model=hf_model, threads=threads, device=device, num_beams=num_beams)
        return "task"

    task = load_task(factory, args("org/m", threads="4", fp16="true", engine="onnx"))
    assert task == "task"
    # fp16 and engine are not the factory's; num_beams was not given: the factory's default
    assert seen == {"hf_model": "org/m", "threads": 4, "device": "cpu", "num_beams": 3}
    assert pb.logged == ["m: org/m on cpu"]


def test_ocr_entry_point_reads_each_request_and_answers_in_order(
    pb: types.SimpleNamespace,
) -> None:
    model = entry_point("ocr")
    model.initialize(args("rapidocr/PP-OCRv4", threads="1"))
    blank = np.full((1, 40, 80, 3), 255, dtype=np.uint8)
    requests = [
        Request({"IMAGE": blank}),
        Request({"IMAGE": blank[..., :2]}),
        Request({}),
        Request({"IMAGE": np.concatenate([blank, blank])}),
    ]
    responses = model.execute(requests)
    assert len(responses) == 4
    assert json.loads(responses[0].output_tensors[0].data[0][0]) == {"text": "", "lines": []}
    assert "IMAGE must be uint8 [n, H, W, 3]" in responses[1].error.message
    assert responses[2].error is not None
    assert responses[3].output_tensors[0].data.shape == (2, 1)


def test_ocr_entry_point_reads_each_request_in_its_own_language(
    pb: types.SimpleNamespace,
) -> None:
    model = entry_point("ocr")
    model.initialize(args("tesseract/5", lang="eng"))
    page = np.asarray(render_text(["Grüße aus Köln"], (640, 120)))[None]
    requests = [
        Request({"IMAGE": page}, {"lang": "deu"}),
        Request({"IMAGE": page}),  # the model's default, English
        Request({"IMAGE": page}, {"lang": "fra"}),  # not installed: this request fails alone
        Request({"IMAGE": page}, {"lang": 7}),
    ]
    responses = model.execute(requests)

    texts = [json.loads(r.output_tensors[0].data[0][0])["text"] for r in responses[:2]]
    assert texts[0] == "Grüße aus Köln" != texts[1]
    assert "apt-get install tesseract-ocr-fra" in responses[2].error.message
    assert responses[3].error.message == "parameter lang must be a string"


def test_embedding_entry_point_refuses_text_that_is_not_utf8(pb: types.SimpleNamespace) -> None:
    model = entry_point("embedding")
    model.task = types.SimpleNamespace(
        embed_counted=lambda texts, pooled: (
            np.ones((len(texts), 2), dtype=np.float32),
            np.arange(len(texts), dtype=np.int32),
        )
    )
    good = np.array([[b"hello"], [b"world"]], dtype=np.object_)
    bad = np.array([[b"\xff"]], dtype=np.object_)
    responses = model.execute([Request({"TEXT": good}), Request({"TEXT": bad})])
    vectors, tokens = responses[0].output_tensors
    assert (vectors.name, vectors.data.shape) == ("EMBEDDING", (2, 2))
    assert (tokens.name, tokens.data.tolist()) == ("TOKENS", [[0], [1]])
    assert responses[1].error.message == "TEXT must be a tensor of UTF-8 strings"


def test_rerank_entry_point_scores_every_pair_of_the_batch_at_once(
    pb: types.SimpleNamespace,
) -> None:
    model = entry_point("rerank")
    calls: list[int] = []

    def score(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, ...]:
        calls.append(len(pairs))
        logits = np.array([float(len(d)) for _, d in pairs], dtype=np.float32)
        return logits, logits / 10, np.full(len(pairs), 7, np.int32), np.zeros(len(pairs), bool)

    model.task = types.SimpleNamespace(score=score)
    rows = lambda *items: np.array([[item] for item in items], dtype=np.object_)  # noqa: E731
    responses = model.execute(
        [
            Request({"QUERY": rows(b"q", b"q"), "DOCUMENT": rows(b"a", b"bbb")}),
            Request({"QUERY": rows(b"q"), "DOCUMENT": rows(b"a", b"b")}),
            Request({"QUERY": rows(b"q"), "DOCUMENT": rows(b"cc")}),
        ]
    )
    assert calls == [3]
    names = [t.name for t in responses[0].output_tensors]
    assert names == ["LOGIT", "SCORE", "TOKENS", "TRUNCATED"]
    assert responses[0].output_tensors[0].data.tolist() == [[1.0], [3.0]]
    assert responses[1].error.message == "QUERY and DOCUMENT need one row per pair"
    assert responses[2].output_tensors[1].data.tolist() == [[np.float32(0.2)]]
