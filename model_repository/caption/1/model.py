"""Triton Python-backend entry point shared by every image-caption / vision-language model.

Decoupled: each request is answered by a stream of responses, text deltas as generate makes
them (when the request asks to stream), then a final response with the rest and STATS
(frontend/tasks/caption_stream.py)."""

from frontend.tasks.caption import CaptionTask
from frontend.tasks.caption_stream import answer_requests
from frontend.tasks.common import load_task


class TritonPythonModel:
    def initialize(self, args):
        self.task = load_task(CaptionTask, args, detail=" ({task.precision})")

    def execute(self, requests):
        answer_requests(self.task, requests)
        return None  # decoupled: every response went through its request's sender
