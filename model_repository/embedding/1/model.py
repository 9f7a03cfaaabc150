"""Triton Python-backend entry point shared by every text-embedding model."""

import triton_python_backend_utils as pb_utils

from frontend.tasks.common import input_array, load_task, run_batch
from frontend.tasks.embedding import EmbeddingTask


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), {task.dimensions} dims"
        self.task = load_task(EmbeddingTask, args, detail=detail)

    def execute(self, requests):
        return run_batch(
            requests,
            read=_texts,
            infer=lambda texts, _key: self.task.embed(texts),
            write=lambda vectors: [pb_utils.Tensor("EMBEDDING", vectors)],
            name="embedding",
        )


def _texts(request):
    try:
        return [item.decode("utf-8") for item in input_array(request, "TEXT").reshape(-1)]
    except (AttributeError, UnicodeDecodeError):
        raise ValueError("TEXT must be a tensor of UTF-8 strings") from None
