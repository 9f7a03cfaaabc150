"""Triton Python-backend entry point shared by every reranker (cross-encoder)."""

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.common import Columns, input_array, load_task, run_batch
from frontend.tasks.rerank import RerankTask

OUTPUTS = ("LOGIT", "SCORE", "TOKENS", "TRUNCATED")


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), max {task.max_length} tokens"
        self.task = load_task(RerankTask, args, detail=detail)

    def execute(self, requests):
        return run_batch(
            requests,
            read=_pairs,
            infer=lambda pairs, _key: Columns(*self.task.score(pairs)),
            write=_tensors,
            name="rerank",
        )


def _pairs(request):
    try:
        queries = [q.decode("utf-8") for q in input_array(request, "QUERY").reshape(-1)]
        documents = [d.decode("utf-8") for d in input_array(request, "DOCUMENT").reshape(-1)]
    except (AttributeError, UnicodeDecodeError):
        raise ValueError("QUERY and DOCUMENT must be tensors of UTF-8 strings") from None
    if len(queries) != len(documents):
        raise ValueError("QUERY and DOCUMENT need one row per pair")
    return list(zip(queries, documents, strict=True))


def _tensors(columns):
    return [
        pb_utils.Tensor(name, np.ascontiguousarray(array).reshape(-1, 1))
        for name, array in zip(OUTPUTS, columns.arrays, strict=True)
    ]
