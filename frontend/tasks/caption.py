"""Image captioning with a BLIP checkpoint: one batched generate for a whole Triton batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from frontend.tasks.common import configure_threads, local_snapshot


class CaptionTask:
    def __init__(
        self,
        hf_model: str,
        threads: int = 1,
        device: str = "cpu",
        fp16: bool = False,
        max_new_tokens: int = 30,
        num_beams: int = 1,
    ):
        configure_threads(threads)
        import torch
        from transformers import AutoProcessor, BlipForConditionalGeneration, BlipProcessor

        self._torch = torch
        snapshot = local_snapshot(hf_model)
        processor: Any = AutoProcessor.from_pretrained(snapshot, local_files_only=True)
        if not hasattr(processor, "image_processor"):  # no processor_class recorded
            processor = BlipProcessor.from_pretrained(snapshot, local_files_only=True)
        self.processor = processor
        # Any: transformers' decorated `to` does not type-check, and `generate` returns a Union.
        model: Any = BlipForConditionalGeneration.from_pretrained(snapshot, local_files_only=True)
        if fp16 and device.startswith("cuda"):
            model = model.half()
        self.model = model.to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams

    def caption(
        self,
        images: list[np.ndarray],
        max_new_tokens: int | None = None,
        num_beams: int | None = None,
    ) -> list[str]:
        """One caption per RGB uint8 [H, W, 3] image, in input order, from one generate call."""
        if not images:
            return []
        inputs = self.processor(
            images=list(images), return_tensors="pt", input_data_format="channels_last"
        )
        pixel_values = inputs["pixel_values"].to(self.device, dtype=self.model.dtype)
        with self._torch.inference_mode():
            tokens = self.model.generate(
                pixel_values=pixel_values,
                max_new_tokens=self.max_new_tokens if max_new_tokens is None else max_new_tokens,
                num_beams=self.num_beams if num_beams is None else num_beams,
            )
        texts = self.processor.batch_decode(tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]
