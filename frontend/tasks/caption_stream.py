"""The caption model's decoupled Triton batch: read each request, one generate per group of
requests sharing their sampling options, text deltas as generate makes them (to requests that
stream), then one final response per request with the rest of its text and STATS."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from frontend.tasks.caption import CaptionTask, Prompt, Sampling
from frontend.tasks.caption_request import decode, unpack_images
from frontend.tasks.common import _pb_utils, images_of, request_settings

# Upper bounds of the plain-caption request parameters; the frontend applies config `limits`.
BOUNDS = {"max_new_tokens": 4096, "num_beams": 16}
# (request, its response sender, its prompt, whether it streams)
Member = tuple[Any, Any, Prompt, bool]


def read_request(request: Any) -> tuple[Prompt, Sampling, bool]:
    """(prompt, sampling, stream) of one request; ValueError/AttributeError if malformed."""
    pb_utils = _pb_utils()
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


def _tensors(text: str, stats: dict[str, Any] | None = None) -> list[Any]:
    pb_utils = _pb_utils()
    tensors = [pb_utils.Tensor("CAPTION", np.array([[text.encode("utf-8")]], dtype=np.object_))]
    if stats is not None:
        encoded = json.dumps(stats).encode("utf-8")
        tensors.append(pb_utils.Tensor("STATS", np.array([[encoded]], dtype=np.object_)))
    return tensors


def answer_requests(task: CaptionTask, requests: list[Any]) -> None:
    """Answer a batch through each request's response sender (a malformed request gets its own
    error); one generate per group of requests that share their sampling options (normally the
    whole batch: greedy), whatever their prompts, images and limits."""
    pb_utils = _pb_utils()
    final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
    groups: dict[tuple[Sampling, str | None], list[Member]] = {}
    for request in requests:
        sender = request.get_response_sender()
        try:
            prompt, sampling, stream = read_request(request)
            key = (sampling, task.row_group(prompt))
        except (AttributeError, ValueError, UnicodeDecodeError) as exc:
            error = pb_utils.TritonError(f"invalid request: {exc}"[:500])
            sender.send(pb_utils.InferenceResponse(error=error), flags=final)
            continue
        groups.setdefault(key, []).append((request, sender, prompt, stream))
    for (sampling, _), members in groups.items():
        _generate(task, sampling, members)


def _generate(task: CaptionTask, sampling: Sampling, members: list[Member]) -> None:
    pb_utils = _pb_utils()
    final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL

    def on_text(row: int, delta: str) -> None:
        _, sender, _, stream = members[row]
        if stream:
            sender.send(pb_utils.InferenceResponse(output_tensors=_tensors(delta)))

    def cancelled(row: int) -> bool:
        return bool(members[row][0].is_cancelled())

    prompts = [prompt for _, _, prompt, _ in members]
    try:
        answers = task.answer(prompts, sampling, on_text, cancelled)
    except Exception as exc:  # fail these requests, keep the model serving
        pb_utils.Logger.log_error(f"caption failed: {type(exc).__name__}: {exc}")
        message = str(exc) if isinstance(exc, ValueError) else "caption failed"
        for _, sender, _, _ in members:
            error = pb_utils.TritonError(f"inference failed: {message}"[:500])
            sender.send(pb_utils.InferenceResponse(error=error), flags=final)
        return
    for (_, sender, _, stream), answer in zip(members, answers, strict=True):
        if answer.done_reason == "cancelled":
            sender.send(flags=final)
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
            rest = answer.text[len(answer.sent) :] if answer.text.startswith(answer.sent) else ""
        sender.send(pb_utils.InferenceResponse(output_tensors=_tensors(rest, stats)), flags=final)
