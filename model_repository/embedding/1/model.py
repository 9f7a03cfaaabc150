"""Triton Python-backend entry point shared by every text-embedding model."""

from frontend.tasks.common import Columns, load_task, run_batch
from frontend.tasks.embedding import EmbeddingTask
from frontend.tasks.triton_io import embedding_items, embedding_tensors


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), {task.dimensions} dims"
        self.task = load_task(EmbeddingTask, args, detail=detail)

    def execute(self, requests):
        # Each item is (text, pooled): requests with and without NORMALIZE share one forward.
        return run_batch(
            requests,
            read=embedding_items,
            infer=lambda items, _key: Columns(
                *self.task.embed_counted([text for text, _ in items], [p for _, p in items])
            ),
            write=embedding_tensors,
            name="embedding",
        )
