"""Triton Python-backend entry point shared by every image-caption model."""

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.caption import CaptionTask
from frontend.tasks.common import images_of, input_array, load_task, request_settings, run_batch

# Upper bounds a request may ask for; the frontend applies the configured (lower) limits.
BOUNDS = {"max_new_tokens": 1024, "num_beams": 16}


class TritonPythonModel:
    def initialize(self, args):
        self.task = load_task(CaptionTask, args, detail=" ({task.precision})")

    def execute(self, requests):
        # One generate per distinct generation setting (normally one for the whole batch).
        return run_batch(
            requests,
            read=lambda request: images_of(input_array(request, "IMAGE")),
            infer=lambda images, key: self.task.caption(images, *key),
            write=lambda captions: [pb_utils.Tensor("CAPTION", _strings(captions))],
            group_key=_generation_key,
            name="caption",
        )


def _generation_key(request):
    settings = request_settings(request.parameters(), BOUNDS)
    return settings.get("max_new_tokens"), settings.get("num_beams")


def _strings(texts):
    return np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)
