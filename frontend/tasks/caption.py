"""Image captioning with a BLIP checkpoint: one batched generate for a whole Triton batch."""

from __future__ import annotations

import numpy as np

from frontend.tasks.common import configure_threads, load_generation_model


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
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self._torch = torch
        self.processor, self.model = load_generation_model(
            hf_model, BlipForConditionalGeneration, BlipProcessor, device, fp16
        )
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams

    @property
    def precision(self) -> str:
        """The dtype the model computes in: float16 with fp16 on a GPU, else float32."""
        return str(self.model.dtype).removeprefix("torch.")

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
