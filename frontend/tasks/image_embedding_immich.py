"""Immich's own CLIP exports on ONNX Runtime, preprocessed as Immich's server does, so the vectors
are the ones an Immich library already stores (no re-indexing after switching servers).

The layout of `immich-app/<modelName>` on the hub:
  config.json                 open_clip's config (embed_dim, text_cfg.context_length, ...)
  visual/model.onnx           image [n, 3, S, S] float32 -> embedding
  visual/preprocess_cfg.json  size, mean, std, interpolation, resize_mode
  textual/model.onnx          text [n, context] int32 (open_clip) or input_ids + attention_mask
                              (M-CLIP: XLM-Roberta text towers) -> embedding
  textual/tokenizer.json      the text tower's tokenizer; tokenizer_config.json its pad token
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_RESAMPLING = {method.name.lower(): method for method in Image.Resampling}


def is_immich_clip(snapshot: Path) -> bool:
    return (snapshot / "visual" / "model.onnx").is_file()


def onnx_session(path: Path, threads: int, device: str = "cpu") -> Any:
    """An ONNX Runtime session that does not spin idle threads (the cores are shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device.split(":")[1])}))
    return ort.InferenceSession(str(path), options, providers=providers)


def fixed_batch(session: Any) -> bool:
    """Whether the graph's first input has a fixed batch of one (then rows run one by one)."""
    first = session.get_inputs()[0].shape[0]
    return isinstance(first, int) and first == 1


def resize_shortest(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """The shorter side to `size`, the other scaled and truncated (Immich's resize_pil)."""
    if image.width < image.height:
        return image.resize((size, int((image.height / image.width) * size)), resample=resample)
    return image.resize((int((image.width / image.height) * size), size), resample=resample)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    left = int((image.size[0] / 2) - (size / 2))
    upper = int((image.size[1] / 2) - (size / 2))
    return image.crop((left, upper, left + size, upper + size))


class ImmichVisualPreprocess:
    """preprocess_cfg.json applied to an RGB uint8 image: float32 [3, S, S], in the order and
    arithmetic of Immich's OpenClipVisualEncoder (bit-for-bit the same input tensor)."""

    def __init__(self, config: dict[str, Any]) -> None:
        size = config["size"]
        self.size = int(size[0] if isinstance(size, list) else size)
        self.resample = _RESAMPLING[str(config.get("interpolation", "bicubic")).lower()]
        self.mean = np.array(config["mean"], dtype=np.float32)
        self.std = np.array(config["std"], dtype=np.float32)
        self.mode = config.get("resize_mode", "shortest")  # open_clip's default for old configs
        if self.mode not in ("shortest", "squash"):
            raise ValueError(f"unsupported resize_mode {self.mode!r} in preprocess_cfg.json")

    def geometry(self, image: Image.Image) -> Image.Image:
        """The resize and crop to size x size. Applied to its own output it changes nothing
        (PIL copies an image resized to its own size), so the frontend may apply it first."""
        if self.mode == "squash":
            return image.resize((self.size, self.size), resample=self.resample)
        return center_crop(resize_shortest(image, self.size, self.resample), self.size)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        image = self.geometry(Image.fromarray(rgb))
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        pixels *= 1.0 / self.std
        pixels -= self.mean / self.std
        return pixels.transpose(2, 0, 1)


def clean_text(text: str, canonicalize: bool = False) -> str:
    text = " ".join(text.split())
    return text.translate(_PUNCTUATION).lower() if canonicalize else text


class ImmichClip:
    """One Immich CLIP checkpoint: both towers, each batch in one run where the graph allows."""

    def __init__(self, snapshot: Path, threads: int = 1, device: str = "cpu") -> None:
        from tokenizers import Tokenizer

        config = json.loads((snapshot / "config.json").read_text(encoding="utf-8"))
        text_cfg: dict[str, Any] = config.get("text_cfg", {})
        self.visual = onnx_session(snapshot / "visual" / "model.onnx", threads, device)
        self.textual = onnx_session(snapshot / "textual" / "model.onnx", threads, device)
        preprocess = json.loads(
            (snapshot / "visual" / "preprocess_cfg.json").read_text(encoding="utf-8")
        )
        self.preprocess = ImmichVisualPreprocess(preprocess)
        textual = snapshot / "textual"
        context = int(text_cfg.get("context_length", 77))
        tokenizer_cfg = json.loads((textual / "tokenizer_config.json").read_text("utf-8"))
        pad = tokenizer_cfg["pad_token"]
        pad = pad["content"] if isinstance(pad, dict) else pad
        self.tokenizer = Tokenizer.from_file(str(textual / "tokenizer.json"))
        self.tokenizer.enable_padding(
            length=context, pad_token=pad, pad_id=self.tokenizer.token_to_id(pad)
        )
        self.tokenizer.enable_truncation(max_length=context)
        kwargs = text_cfg.get("tokenizer_kwargs") or {}
        self.canonicalize = kwargs.get("clean") == "canonicalize"
        self.text_inputs = {i.name: i.type for i in self.textual.get_inputs()}
        self.visual_input = self.visual.get_inputs()[0]
        self.dimensions = int(config.get("embed_dim") or 0)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        if self.visual_input.type == "tensor(uint8)":  # graphs that normalize themselves
            # resize/crop as usual, then the uint8 pixels [n, S, S, 3]
            pixels = self._resized_uint8(images)
        else:
            pixels = np.stack([self.preprocess(image) for image in images])
        return self._run(self.visual, {self.visual_input.name: pixels})

    def _resized_uint8(self, images: list[np.ndarray]) -> np.ndarray:
        crops = [self.preprocess.geometry(Image.fromarray(image)) for image in images]
        return np.stack([np.asarray(crop.convert("RGB")) for crop in crops])

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([clean_text(t, self.canonicalize) for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        if "text" in self.text_inputs:  # open_clip
            feeds = {"text": ids}
        else:  # M-CLIP
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
        typed = {
            name: value.astype(np.int32 if self.text_inputs[name] == "tensor(int32)" else np.int64)
            for name, value in feeds.items()
        }
        return self._run(self.textual, typed)

    @staticmethod
    def _run(session: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if not fixed_batch(session):
            return np.asarray(session.run(None, feeds)[0], dtype=np.float32).reshape(
                len(next(iter(feeds.values()))), -1
            )
        rows = len(next(iter(feeds.values())))
        return np.concatenate(
            [
                np.asarray(
                    session.run(None, {k: v[i : i + 1] for k, v in feeds.items()})[0],
                    dtype=np.float32,
                ).reshape(1, -1)
                for i in range(rows)
            ]
        )
