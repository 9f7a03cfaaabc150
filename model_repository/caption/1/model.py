"""Triton Python-backend entry point shared by every image-caption / vision-language model.

Decoupled: each request is answered by a stream of responses, text deltas as generate makes
them (when the request asks to stream), then a final response with the rest and STATS."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.caption import CaptionTask, Prompt, Sampling
from frontend.tasks.caption_request import decode, unpack_images
from frontend.tasks.common import images_of, load_task, request_settings

# Upper bounds of the plain-caption request parameters; the frontend applies config `limits`.
BOUNDS = {"max_new_tokens": 4096, "num_beams": 16}
FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def _read(request):
    """(prompt, sampling, stream) of one request; ValueError/AttributeError if malformed."""
    body = pb_utils.get_input_tensor_by_name(request, "REQUEST")
    if body is None:  # a plain caption of one IMAGE, options as request parameters
        image = pb_utils.get_input_tensor_by_name(request, "IMAGE")
        if image is None:
            raise ValueError("send IMAGE, or REQUEST with IMAGES and IMAGE_SHAPES")
        settings = request_settings(request.parameters(), BOUNDS)
        prompt = Prompt([], images_of(image.as_numpy()), settings.get("max_new_tokens"))
        return prompt, Sampling(num_beams=settings.get("num_beams")), False
    pixels = pb_utils.get_input_tensor_by_name(request, "IMAGES")
    shapes = pb_utils.get_input_tensor_by_name(request, "IMAGE_SHAPES")
    images = []
    if pixels is not None and shapes is not None:
        images = unpack_images(pixels.as_numpy(), shapes.as_numpy())
    text = body.as_numpy().reshape(-1)[0]
    return decode(text.decode("utf-8") if isinstance(text, bytes) else str(text), images)


def _tensors(text, stats=None):
    tensors = [pb_utils.Tensor("CAPTION", np.array([[text.encode("utf-8")]], dtype=np.object_))]
    if stats is not None:
        encoded = json.dumps(stats).encode("utf-8")
        tensors.append(pb_utils.Tensor("STATS", np.array([[encoded]], dtype=np.object_)))
    return tensors


class TritonPythonModel:
    def initialize(self, args):
        self.task = load_task(CaptionTask, args, detail=" ({task.precision})")

    def execute(self, requests):
        # One generate per group of requests that share their sampling options (normally the
        # whole batch: greedy), whatever their prompts, images and limits.
        groups = {}
        for request in requests:
            sender = request.get_response_sender()
            try:
                prompt, sampling, stream = _read(request)
                key = (sampling, self.task.row_group(prompt))
            except (AttributeError, ValueError, UnicodeDecodeError) as exc:
                error = pb_utils.TritonError(f"invalid request: {exc}"[:500])
                sender.send(pb_utils.InferenceResponse(error=error), flags=FINAL)
                continue
            groups.setdefault(key, []).append((request, sender, prompt, stream))
        for (sampling, _), members in groups.items():
            self._generate(sampling, members)
        return None

    def _generate(self, sampling, members):
        def on_text(row, delta):
            _, sender, _, stream = members[row]
            if stream:
                sender.send(pb_utils.InferenceResponse(output_tensors=_tensors(delta)))

        def cancelled(row):
            return members[row][0].is_cancelled()

        prompts = [prompt for _, _, prompt, _ in members]
        try:
            answers = self.task.answer(prompts, sampling, on_text, cancelled)
        except Exception as exc:  # fail these requests, keep the model serving
            pb_utils.Logger.log_error(f"caption failed: {type(exc).__name__}: {exc}")
            message = str(exc) if isinstance(exc, ValueError) else "caption failed"
            for _, sender, _, _ in members:
                error = pb_utils.TritonError(f"inference failed: {message}"[:500])
                sender.send(pb_utils.InferenceResponse(error=error), flags=FINAL)
            return
        for (_, sender, _, stream), answer in zip(members, answers, strict=True):
            if answer.done_reason == "cancelled":
                sender.send(flags=FINAL)
                continue
            stats = {
                "text": answer.text,
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "done_reason": answer.done_reason,
                "prompt_ms": round(answer.prompt_ms, 3),
            }
            rest = answer.text
            if stream:  # what the deltas have not said yet
                rest = (
                    answer.text[len(answer.sent) :] if answer.text.startswith(answer.sent) else ""
                )
            sender.send(
                pb_utils.InferenceResponse(output_tensors=_tensors(rest, stats)), flags=FINAL
            )
