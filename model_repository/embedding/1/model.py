"""Triton Python-backend entry point shared by every text-embedding model."""

import triton_python_backend_utils as pb_utils

from frontend.tasks.common import Columns, input_array, load_task, run_batch
from frontend.tasks.embedding import EmbeddingTask


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), {task.dimensions} dims"
        self.task = load_task(EmbeddingTask, args, detail=detail)

    def execute(self, requests):
        return run_batch(
            requests,
            read=_texts,
            infer=lambda texts, _key: Columns(*self.task.embed_counted(texts)),
            write=_tensors,
            name="embedding",
        )


def _texts(request):
    try:
        return [item.decode("utf-8") for item in input_array(request, "TEXT").reshape(-1)]
    except (AttributeError, UnicodeDecodeError):
        raise ValueError("TEXT must be a tensor of UTF-8 strings") from None


def _tensors(columns):
    vectors, tokens = columns.arrays
    return [pb_utils.Tensor("EMBEDDING", vectors), pb_utils.Tensor("TOKENS", tokens.reshape(-1, 1))]
