"""Triton Python-backend entry point shared by every reranker (cross-encoder)."""

from frontend.tasks.common import Columns, load_task, run_batch
from frontend.tasks.rerank import RerankTask
from frontend.tasks.triton_io import rerank_pairs, rerank_tensors


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}, {task.precision}), max {task.max_length} tokens"
        self.task = load_task(RerankTask, args, detail=detail)

    def execute(self, requests):
        return run_batch(
            requests,
            read=rerank_pairs,
            infer=lambda pairs, _key: Columns(*self.task.score(pairs)),
            write=rerank_tensors,
            name="rerank",
        )
