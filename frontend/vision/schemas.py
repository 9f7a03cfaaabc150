"""The typed interface between the vision-language service and the chat APIs built on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation; a user turn may carry images."""

    role: Literal["system", "user", "assistant"]
    text: str
    images: tuple[bytes, ...] = ()  # undecoded image files (JPEG/PNG/...), as the client sent them


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding options; None means the checkpoint's generation_config or the configured default."""

    max_new_tokens: int | None = None
    temperature: float | None = None  # 0 or None = greedy
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None  # constrain the output to this JSON schema
    json_mode: bool = False  # any JSON object


@dataclass(frozen=True)
class ChatRequest:
    """A conversation to answer with one vision-language model."""

    # configured/runtime model id, HF id or alias; None = the caption task's default
    model: str | None
    messages: tuple[ChatMessage, ...]
    options: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass(frozen=True)
class ChatResult:
    """The whole answer and its accounting."""

    text: str
    model: str  # the model id used
    prompt_tokens: int
    completion_tokens: int
    done_reason: Literal["stop", "length"]
    load_ms: float  # time spent loading the model for this request (0 if it was loaded)
    prompt_ms: float
    total_ms: float


@dataclass(frozen=True)
class TextDelta:
    """Newly generated text (may be empty), in order."""

    text: str
