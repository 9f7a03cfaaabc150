"""Vision-language generation for every checkpoint AutoModelForImageTextToText loads: chat
templates (LLaVA, Qwen2-VL, SmolVLM, Gemma 3, ...) and plain prompts (BLIP's prefix, Florence-2's
task tokens, PaliGemma's prefix); one left-padded generate for a whole Triton batch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frontend.tasks.common import configure_threads, load_generation_model
from frontend.tasks.vlm_rows import RowState, RowTracker

# What a plain caption asks for when a request brings no prompt, per model_type; chat models
# get CHAT_CAPTION_PROMPT. BLIP captions from nothing (its prompt is a prefix to continue).
PLAIN_PROMPTS = {"blip": "", "florence2": "<CAPTION>", "paligemma": "caption en"}
CHAT_CAPTION_PROMPT = "Describe this image in one sentence."
# Families whose text decoder uses absolute positions: left padding would shift them, so rows
# batch only with rows of the same prompt.
SAME_PROMPT_FAMILIES = {"blip"}


@dataclass(frozen=True)
class Turn:
    role: str  # system, user or assistant
    text: str
    images: int = 0  # how many of the prompt's images go with this turn, in order


@dataclass
class Prompt:
    """One request: its conversation (empty = a plain caption), images and per-row limits."""

    turns: list[Turn]
    images: list[np.ndarray]
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sampling:
    """Options one generate call shares across its rows (so they group a batch)."""

    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    num_beams: int | None = None
    json_schema: str | None = None  # the schema as canonical JSON (hashable)
    json_mode: bool = False


@dataclass
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    done_reason: str  # stop, length or cancelled
    sent: str = field(default="", repr=False)  # what was streamed of it already
    prompt_ms: float = 0.0  # reading the prompt (images included): time to the first token


class CaptionTask:
    def __init__(
        self,
        hf_model: str,
        max_new_tokens: int = 30,
        num_beams: int = 1,
        threads: int = 1,
        device: str = "cpu",
        fp16: bool = False,
        bf16: bool = False,
        quantize: str = "none",
    ):
        configure_threads(threads)
        import torch
        from transformers import AutoModelForImageTextToText, BlipProcessor

        self._torch = torch
        self.processor, self.model = load_generation_model(
            hf_model, AutoModelForImageTextToText, BlipProcessor, device, fp16, quantize, bf16
        )
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.family = str(self.model.config.model_type)
        self.tokenizer: Any = self.processor.tokenizer
        # A decoder-only model continues every row at the right edge: pad on the left. An
        # encoder-decoder's prompt is encoded, not continued: pad on the right, where padding
        # shifts no learned positions (Florence-2's BART answered differently left-padded).
        encoder_decoder = bool(self.model.config.is_encoder_decoder)
        self.tokenizer.padding_side = "right" if encoder_decoder else "left"
        self.chat = bool(getattr(self.processor, "chat_template", None)) and (
            self.family not in PLAIN_PROMPTS
        )
        # BART-style checkpoints (Florence-2) force an end token at the batch's token limit:
        # rows keep limits of their own, so a row must not end differently batched than alone.
        self.model.generation_config.forced_eos_token_id = None
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}

    @property
    def precision(self) -> str:
        """The dtype the model computes in: float16/bfloat16 with fp16/bf16 on a GPU, else
        float32 (bitsandbytes models report their compute dtype)."""
        return str(self.model.dtype).removeprefix("torch.")

    def row_group(self, prompt: Prompt) -> str | None:
        """A batch-grouping key the row needs beyond its sampling options."""
        return self.plain_text(prompt) if self.family in SAME_PROMPT_FAMILIES else None

    def caption(
        self,
        images: list[np.ndarray],
        max_new_tokens: int | None = None,
        num_beams: int | None = None,
    ) -> list[str]:
        """One caption per RGB uint8 [H, W, 3] image, in input order, from one generate call."""
        prompts = [Prompt([], [image], max_new_tokens) for image in images]
        return [a.text for a in self.answer(prompts, Sampling(num_beams=num_beams))]

    def answer(
        self,
        prompts: list[Prompt],
        sampling: Sampling = Sampling(),
        on_text: Callable[[int, str], None] | None = None,
        cancelled: Callable[[int], bool] | None = None,
    ) -> list[Answer]:
        """Every prompt's answer from one generate; `on_text(row, delta)` gets text as it is
        final, `cancelled(row)` is asked after each step and ends that row when true."""
        if not prompts:
            return []
        inputs = self._inputs(prompts)
        mask = inputs.get("attention_mask")
        counts = [int(m.sum()) for m in mask] if mask is not None else [0] * len(prompts)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:  # the processor gives float32; the model may be half
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        rows = [
            RowState(p.max_new_tokens or self.max_new_tokens, p.stop, quiet=self._boxed(p))
            for p in prompts
        ]
        kwargs = self._generation_kwargs(sampling, max(row.limit for row in rows))
        tracker = None
        if kwargs["num_beams"] == 1:  # beams reorder rows each step: trimmed afterwards instead
            tracker = RowTracker(rows, self._decode, self.eos_ids, on_text, cancelled)
            kwargs["stopping_criteria"] = [tracker]
        if sampling.seed is not None:
            self._torch.manual_seed(sampling.seed)
        started = time.perf_counter()
        with self._torch.inference_mode():
            tokens = self.model.generate(**inputs, **kwargs)
        if tracker is None:
            self._trim(rows, tokens, inputs)
        first = tracker.first_step_at if tracker is not None else None
        prompt_ms = ((first or started) - started) * 1000
        return [
            Answer(
                self._final(p, row),
                counts[i],
                len(row.tokens),
                row.done or "stop",
                row.sent,
                prompt_ms,
            )
            for i, (p, row) in enumerate(zip(prompts, rows, strict=True))
        ]

    # --- prompts -------------------------------------------------------------------------

    def plain_text(self, prompt: Prompt) -> str:
        """The text a plain-prompt family reads: the last user turn, else its default."""
        users = [t.text for t in prompt.turns if t.role == "user" and t.text.strip()]
        return users[-1] if users else PLAIN_PROMPTS.get(self.family, "")

    def _inputs(self, prompts: list[Prompt]) -> Any:
        from PIL import Image

        images = [[Image.fromarray(a) for a in p.images] for p in prompts]
        if self.chat:
            texts = [self._chat_text(p) for p in prompts]
        else:
            texts = [self.plain_text(p) for p in prompts]
        kwargs: dict[str, Any] = {"return_tensors": "pt", "padding": True}
        if any(texts):
            kwargs["text"] = texts
        if not any(images):
            return self.processor(**kwargs)
        flat = [image for row in images for image in row]
        try:  # chat processors mostly take one list of images per prompt ...
            return self.processor(images=images if self.chat else flat, **kwargs)
        except (ValueError, TypeError):  # ... a few want them flat
            return self.processor(images=flat, **kwargs)

    def _chat_text(self, prompt: Prompt) -> str:
        turns = prompt.turns or [Turn("user", CHAT_CAPTION_PROMPT, len(prompt.images))]
        conversation: list[dict[str, Any]] = [
            {
                "role": t.role,
                "content": [{"type": "image"}] * t.images + [{"type": "text", "text": t.text}],
            }
            for t in turns
        ]
        prefill = turns[-1].role == "assistant"  # continue the answer, as the pipeline does
        options = {"add_generation_prompt": not prefill, "continue_final_message": prefill}
        try:
            return str(self.processor.apply_chat_template(conversation, **options))
        except Exception:  # templates without a system role: fold it into the next turn
            if turns[0].role != "system" or len(conversation) < 2:
                raise
            first = conversation[1]
            first["content"][-1]["text"] = f"{turns[0].text}\n\n{first['content'][-1]['text']}"
            return str(self.processor.apply_chat_template(conversation[1:], **options))

    # --- generation ----------------------------------------------------------------------

    def _generation_kwargs(self, sampling: Sampling, max_new_tokens: int) -> dict[str, Any]:
        """What this batch changes from the checkpoint's own generation_config (which generate
        applies for everything not named here): the limit, greedy or sampling, constraints."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "num_beams": sampling.num_beams or self.num_beams,
        }
        if sampling.temperature:  # greedy unless asked: reproducible answers, and cacheable
            kwargs.update(do_sample=True, temperature=sampling.temperature)
            if sampling.top_p is not None:
                kwargs["top_p"] = sampling.top_p
            if sampling.top_k is not None:
                kwargs["top_k"] = sampling.top_k
        else:
            kwargs["do_sample"] = False
        if sampling.json_schema is not None or sampling.json_mode:
            kwargs["logits_processor"] = [self._json_processor(sampling)]
        return kwargs

    def _json_processor(self, sampling: Sampling) -> Any:
        try:
            from frontend.vision.grammar import make_logits_processor  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ValueError("structured (JSON) output is not available on this server") from None
        schema = json.loads(sampling.json_schema) if sampling.json_schema is not None else None
        return make_logits_processor(self.tokenizer, schema, sampling.json_mode)

    def _decode(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))

    def _trim(self, rows: list[RowState], tokens: Any, inputs: Any) -> None:
        """Beam search: each row's tokens up to its eos, limit or stop string."""
        start = self._new_tokens_start(tokens, inputs)
        for row, sequence in zip(rows, tokens[:, start:].tolist(), strict=True):
            for token in sequence:
                if token in self.eos_ids or len(row.tokens) >= row.limit:
                    break
                row.tokens.append(token)
            row.text = self._decode(row.tokens)
            cut = min((row.text.find(s) for s in row.stops if s in row.text), default=-1)
            if cut >= 0:
                row.text = row.text[:cut]
            row.done = "length" if cut < 0 and len(row.tokens) >= row.limit else "stop"

    def _new_tokens_start(self, tokens: Any, inputs: Any) -> int:
        if self.model.config.is_encoder_decoder or "input_ids" not in inputs:
            return 1  # after the decoder's start token
        if self.family in SAME_PROMPT_FAMILIES:  # BLIP drops the prompt's trailing [SEP]
            return int(inputs["input_ids"].shape[1]) - 1
        return int(inputs["input_ids"].shape[1])

    def _boxed(self, prompt: Prompt) -> bool:
        """Florence-2 tasks whose answer is parsed into boxes or polygons at the end."""
        if self.family != "florence2":
            return False
        kinds = getattr(self.processor, "tasks_answer_post_processing_type", {})
        return kinds.get(self.plain_text(prompt).strip(), "pure_text") != "pure_text"

    def _final(self, prompt: Prompt, row: RowState) -> str:
        if not row.quiet:
            return row.text.strip()
        task = self.plain_text(prompt).strip()
        raw = self.tokenizer.decode(row.tokens, skip_special_tokens=False)
        height, width = prompt.images[0].shape[:2]
        parsed = self.processor.post_process_generation(raw, task=task, image_size=(width, height))
        return json.dumps(parsed.get(task, parsed), separators=(",", ":"))
