"""What the model API accepts as names: a task word, a model reference, a new entry's id."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError

from frontend.core.config import MODEL_ID_PATTERN, RESERVED_MODEL_IDS, ModelEntry, Task
from frontend.core.errors import InvalidRequest, ModelNotFound
from frontend.models.cache import InvalidModelId, check_hf_id
from frontend.models.schemas import AddModelRequest


def parse_task(name: str) -> Task:
    """'embedding' or 'text_embedding' -> Task.TEXT_EMBEDDING (404 for any other word)."""
    task = Task.parse(name)
    if task is None:
        raise ModelNotFound(
            f"unknown task '{name[:50]}'; expected embedding, caption, ocr, rerank, image_embedding"
        )
    return task


def check_ref(ref: str) -> str:
    """A config id or a Hugging Face id, else 400: nothing else is ever looked up on disk."""
    if MODEL_ID_PATTERN.fullmatch(ref):
        return ref
    try:
        return check_hf_id(ref)
    except InvalidModelId as exc:
        raise InvalidRequest(str(exc)) from None


def new_id(hf_model: str, taken: Iterable[str]) -> str:
    """A config id made from the model's name, numbered past the ids already taken."""
    base = re.sub(r"[^a-z0-9._-]+", "-", hf_model.split("/")[-1].lower()).strip("-._")[:56]
    base = base or "model"
    used = set(taken) | RESERVED_MODEL_IDS
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


# What a POST /api/models passes on to its entry as it is
PASSED_ON = {"device", "instances", "threads", "max_batch_size", "keep_alive_seconds", "pinned"}


def new_entry(
    request: AddModelRequest, task: Task, model_id: str, dimensions: int | None
) -> ModelEntry:
    """The entry a POST /api/models asks for; a value the entry refuses is a 400 naming it."""
    try:
        return ModelEntry(
            id=model_id,
            hf_model=request.hf_model,
            dimensions=dimensions if task in (Task.TEXT_EMBEDDING, Task.IMAGE_EMBEDDING) else None,
            **request.model_dump(include=PASSED_ON),
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise InvalidRequest(f"{field}: {problem['msg']}") from None
