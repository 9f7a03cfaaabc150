"""A TrOCR-style Hugging Face model (VisionEncoderDecoder) as an OCR engine: each image is one
text line."""

from __future__ import annotations

import numpy as np

from frontend.tasks.common import configure_threads, load_generation_model
from frontend.tasks.ocr_result import OcrLine, OcrResult, rgb, whole_image_box

TROCR_MAX_NEW_TOKENS = 64


class TrOcrEngine:
    """A VisionEncoderDecoder line recogniser (TrOCR): each image is one text line."""

    def __init__(
        self,
        hf_model: str,
        threads: int = 1,
        device: str = "cpu",
        max_new_tokens: int = TROCR_MAX_NEW_TOKENS,
    ):
        configure_threads(threads)
        import torch
        from transformers import TrOCRProcessor, VisionEncoderDecoderModel

        self._torch = torch
        self.processor, self.model = load_generation_model(
            hf_model, VisionEncoderDecoderModel, TrOCRProcessor, device
        )
        self.device = device
        self.max_new_tokens = max_new_tokens
        eos = self.model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def read(self, images: list[np.ndarray]) -> list[OcrResult]:
        if not images:
            return []
        pictures = [rgb(image) for image in images]
        inputs = self.processor(
            images=pictures, return_tensors="pt", input_data_format="channels_last"
        )
        pixel_values = inputs["pixel_values"].to(self.device, dtype=self.model.dtype)
        with self._torch.inference_mode():
            # Greedy: the transition scores are then exactly the chosen tokens' probabilities.
            out = self.model.generate(
                pixel_values=pixel_values,
                max_new_tokens=self.max_new_tokens,
                num_beams=1,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
            log_probs = self.model.compute_transition_scores(
                out.sequences, out.scores, normalize_logits=True
            )
        generated = out.sequences[:, -log_probs.shape[1] :].cpu().numpy()
        probabilities = log_probs.float().exp().cpu().numpy()
        texts = self.processor.batch_decode(out.sequences, skip_special_tokens=True)
        results = []
        for image, text, tokens, probs in zip(
            pictures, texts, generated, probabilities, strict=True
        ):
            confidence = float(np.clip(np.mean(probs[: self._length(tokens)]), 0.0, 1.0))
            line = OcrLine(text.strip(), confidence, whole_image_box(image))
            results.append(OcrResult(line.text, [line]) if line.text else OcrResult("", []))
        return results

    def _length(self, tokens: np.ndarray) -> int:
        """Generated tokens up to and including the first end token (padding follows it)."""
        for index, token in enumerate(tokens.tolist()):
            if token in self._eos:
                return index + 1
        return len(tokens)
