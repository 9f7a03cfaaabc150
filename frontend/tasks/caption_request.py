"""The caption model's Triton request: what the frontend sends (REQUEST JSON, images) and how
the stub reads it back; the stub's own bounds on every option."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from frontend.tasks.caption import Prompt, Sampling, Turn

# Hard ceilings the stub enforces whatever the caller; the frontend applies config `limits`.
BOUNDS = {"max_new_tokens": 4096, "num_beams": 16, "images": 1024, "turns": 512, "stops": 16}
ROLES = ("system", "user", "assistant")


def pack_images(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """IMAGES (all pixels, concatenated) and IMAGE_SHAPES ([H, W, 3] per image, flattened)."""
    if not images:
        return np.zeros(0, np.uint8), np.zeros(0, np.int32)
    pixels = np.concatenate([np.ascontiguousarray(a, np.uint8).reshape(-1) for a in images])
    shapes = np.array([a.shape for a in images], np.int32).reshape(-1)
    return pixels, shapes


def unpack_images(pixels: np.ndarray, shapes: np.ndarray) -> list[np.ndarray]:
    """The images back from IMAGES and IMAGE_SHAPES; ValueError if they do not add up."""
    pixels, shapes = pixels.reshape(-1), shapes.reshape(-1)
    if pixels.dtype != np.uint8 or len(shapes) % 3 or len(shapes) // 3 > BOUNDS["images"]:
        raise ValueError("IMAGES must be uint8 and IMAGE_SHAPES k x [H, W, 3]")
    images, offset = [], 0
    for height, width, channels in shapes.reshape(-1, 3).tolist():
        if channels != 3 or height < 1 or width < 1:
            raise ValueError("each image must be [H, W, 3] with H, W >= 1")
        size = height * width * 3
        if offset + size > len(pixels):
            raise ValueError("IMAGES is shorter than IMAGE_SHAPES says")
        images.append(pixels[offset : offset + size].reshape(height, width, 3))
        offset += size
    if offset != len(pixels):
        raise ValueError("IMAGES is longer than IMAGE_SHAPES says")
    return images


def _number(options: dict[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValueError(f"{name} must be a {kind.__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low:g} to {high:g}")
    return kind(value)


def decode(text: str, images: list[np.ndarray]) -> tuple[Prompt, Sampling, bool]:
    """(prompt, sampling, stream) from REQUEST's JSON; ValueError for anything malformed."""
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("REQUEST must be a JSON object")
    raw_turns, options = body.get("turns", []), body.get("options", {})
    if not isinstance(raw_turns, list) or not isinstance(options, dict):
        raise ValueError("REQUEST turns must be a list and options an object")
    if len(raw_turns) > BOUNDS["turns"]:
        raise ValueError("too many turns")
    turns = []
    for turn in raw_turns:
        role, words, count = turn.get("role"), turn.get("text", ""), turn.get("images", 0)
        if role not in ROLES or not isinstance(words, str) or not isinstance(count, int):
            raise ValueError("each turn needs a role (system/user/assistant), text and images")
        turns.append(Turn(role, words, count))
    if turns and sum(t.images for t in turns) != len(images):
        raise ValueError("the turns' image counts do not match the images sent")
    stop = options.get("stop") or []
    if not isinstance(stop, list) or len(stop) > BOUNDS["stops"]:
        raise ValueError(f"stop must be a list of at most {BOUNDS['stops']} strings")
    if not all(isinstance(s, str) and s for s in stop):
        raise ValueError("stop strings must be non-empty strings")
    schema = options.get("json_schema")
    if schema is not None and not isinstance(schema, dict):
        raise ValueError("json_schema must be an object")
    prompt = Prompt(
        turns,
        images,
        _number(options, "max_new_tokens", int, 1, BOUNDS["max_new_tokens"]),
        tuple(stop),
    )
    sampling = Sampling(
        temperature=_number(options, "temperature", float, 0, 100),
        top_p=_number(options, "top_p", float, 0, 1),
        top_k=_number(options, "top_k", int, 1, 100_000),
        seed=_number(options, "seed", int, 0, 2**63 - 1),
        num_beams=_number(options, "num_beams", int, 1, BOUNDS["num_beams"]),
        json_schema=json.dumps(schema, sort_keys=True) if schema is not None else None,
        json_mode=bool(options.get("json_mode", False)),
    )
    return prompt, sampling, bool(body.get("stream", False))
