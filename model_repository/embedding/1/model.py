"""Triton Python-backend entry point shared by every text-embedding model."""

import triton_python_backend_utils as pb_utils

from frontend.tasks.common import Columns, input_array, load_task, run_batch
from frontend.tasks.embedding import EmbeddingTask


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), {task.dimensions} dims"
        self.task = load_task(EmbeddingTask, args, detail=detail)

    def execute(self, requests):
        # Each item is (text, pooled): requests with and without NORMALIZE share one forward.
        return run_batch(
            requests,
            read=_items,
            infer=lambda items, _key: Columns(
                *self.task.embed_counted([text for text, _ in items], [p for _, p in items])
            ),
            write=_tensors,
            name="embedding",
        )


def _items(request):
    try:
        texts = [item.decode("utf-8") for item in input_array(request, "TEXT").reshape(-1)]
    except (AttributeError, UnicodeDecodeError):
        raise ValueError("TEXT must be a tensor of UTF-8 strings") from None
    flags = pb_utils.get_input_tensor_by_name(request, "NORMALIZE")
    if flags is None:  # optional: the model's own output
        return [(text, False) for text in texts]
    normalize = flags.as_numpy().reshape(-1)
    if normalize.dtype != bool or len(normalize) != len(texts):
        raise ValueError("NORMALIZE must be a BOOL tensor with one value per TEXT row")
    return [(text, not bool(flag)) for text, flag in zip(texts, normalize, strict=True)]


def _tensors(columns):
    vectors, tokens = columns.arrays
    return [pb_utils.Tensor("EMBEDDING", vectors), pb_utils.Tensor("TOKENS", tokens.reshape(-1, 1))]
