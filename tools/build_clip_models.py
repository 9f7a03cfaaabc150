"""Tiny image-embedding test models (tools/build_test_models.py imports them into a cache).

tiny-clip         a random transformers CLIPModel (32-wide, 2 layers, 32 px images, 16-d
                  vectors) with a word-level tokenizer
tiny-siglip       a random transformers SiglipModel of the same size (save_tiny_siglip)
tiny-clip-immich  the same weights in Immich's ONNX layout (visual/, textual/, config.json,
                  preprocess_cfg.json, tokenizer.json), exported with torch.onnx
tiny-buffalo      SCRFD- and ArcFace-shaped ONNX graphs (buffalo_l's input and output names
                  and shapes), built with onnx.helper: the detector scores 32 x 32 cells by
                  brightness, so a white square on black is a "face" whose box is that cell

`--shape vit-b-32` writes random weights of ViT-B-32's shape (openai/clip-vit-base-patch32: 224 px,
patch 32, 12 x 768 vision, 12 x 512 text, 77 tokens, 512-d vectors; ~150 M parameters) in
Immich's layout, for tools/bench_clip.py:

    python -m tools.build_clip_models --shape vit-b-32 --immich DIR
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CLIP_SIZE = 32  # image side and hidden width
CONTEXT = 16  # text tokens
PROJECTION = 16
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_WORDS = [
    *("a", "photo", "of", "the", "dog", "cat", "on", "beach", "in", "snow", "car", "red"),
    *("blue", "green", "house", "tree", "mountain", "city", "night", "sunset", "child"),
]
CLIP_SPECIALS = ["<pad>", "[UNK]", "<|startoftext|>", "<|endoftext|>"]
# The detector's keypoints within a detected 32 px cell (fractions from its top-left corner):
# eyes, nose, mouth corners
FACE_POINTS = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
# buffalo_l's det_10g.onnx / w600k_r50.onnx tensor names
SCRFD_OUTPUTS = {8: ("448", "451", "454"), 16: ("471", "474", "477"), 32: ("494", "497", "500")}
ARCFACE_OUTPUT = "683"


@dataclass(frozen=True)
class ClipShape:
    """A CLIPModel's sizes: the tiny test model's by default."""

    image_size: int = CLIP_SIZE
    patch_size: int = 8
    vision_width: int = CLIP_SIZE
    vision_layers: int = 2
    vision_heads: int = 4
    text_width: int = CLIP_SIZE
    text_layers: int = 2
    text_heads: int = 4
    context: int = CONTEXT
    vocab_size: int = 0  # 0: the word-level tokenizer's own
    projection: int = PROJECTION


TINY = ClipShape()
# openai/clip-vit-base-patch32 (= Immich's ViT-B-32__openai)
VIT_B_32 = ClipShape(224, 32, 768, 12, 12, 512, 12, 8, 77, 49408, 512)
SHAPES = {"tiny": TINY, "vit-b-32": VIT_B_32}


def _clip_tokenizer() -> Any:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = {word: i for i, word in enumerate([*CLIP_SPECIALS, *CLIP_WORDS])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)],
    )
    return tokenizer


def _tiny_clip(vocab_size: int, eos: int, shape: ClipShape = TINY) -> Any:
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    # the tiny model's MLP is 2x wide; CLIP's own is 4x
    ratio = 2 if shape == TINY else 4
    text = CLIPTextConfig(
        vocab_size=shape.vocab_size or vocab_size,
        max_position_embeddings=shape.context,
        eos_token_id=eos,
        bos_token_id=eos - 1,
        pad_token_id=0,
        hidden_size=shape.text_width,
        intermediate_size=ratio * shape.text_width,
        num_hidden_layers=shape.text_layers,
        num_attention_heads=shape.text_heads,
    )
    vision = CLIPVisionConfig(
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        hidden_size=shape.vision_width,
        intermediate_size=ratio * shape.vision_width,
        num_hidden_layers=shape.vision_layers,
        num_attention_heads=shape.vision_heads,
    )
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=shape.projection
    )
    return CLIPModel(config).eval()


def save_tiny_clip(folder: Path) -> None:
    """The transformers checkpoint: CLIPModel, CLIPImageProcessor and a fast tokenizer."""
    from transformers import CLIPImageProcessor, CLIPProcessor, PreTrainedTokenizerFast

    raw = _clip_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="[UNK]",
        pad_token="<pad>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        model_max_length=CONTEXT,
    )
    images = CLIPImageProcessor(
        size={"shortest_edge": CLIP_SIZE},
        crop_size={"height": CLIP_SIZE, "width": CLIP_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    _tiny_clip(raw.get_vocab_size(), raw.token_to_id("<|endoftext|>")).save_pretrained(folder)


def save_tiny_siglip(folder: Path) -> None:
    """A random transformers SiglipModel (32-wide, 2 layers, 32 px squashed images, texts padded
    to 64 tokens) on the same word-level tokenizer: SigLIP's branch of the torch-free engine."""
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTextConfig,
        SiglipVisionConfig,
    )

    raw = _clip_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="<pad>",
        eos_token="<|endoftext|>", model_max_length=64,
    )  # fmt: skip
    layers: dict[str, Any] = {
        "hidden_size": CLIP_SIZE,
        "intermediate_size": 2 * CLIP_SIZE,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }
    text = SiglipTextConfig(
        vocab_size=raw.get_vocab_size(), max_position_embeddings=64, pad_token_id=0,
        bos_token_id=None, eos_token_id=raw.token_to_id("<|endoftext|>"), **layers,
    )  # fmt: skip
    vision = SiglipVisionConfig(image_size=CLIP_SIZE, patch_size=8, **layers)
    config = SiglipConfig(text_config=text.to_dict(), vision_config=vision.to_dict())
    images = SiglipImageProcessor(size={"height": CLIP_SIZE, "width": CLIP_SIZE})
    SiglipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    SiglipModel(config).eval().save_pretrained(folder)


def save_tiny_clip_immich(folder: Path, checkpoint: Path) -> None:
    """`checkpoint`'s weights in Immich's layout; both towers end in an L2 normalization."""
    from transformers import CLIPModel

    save_clip_immich(folder, CLIPModel.from_pretrained(checkpoint).eval())


def save_random_clip_immich(folder: Path, shape: ClipShape) -> None:
    """A random CLIPModel of `shape` (seeded by the caller), straight into Immich's layout."""
    raw = _clip_tokenizer()
    save_clip_immich(
        folder, _tiny_clip(raw.get_vocab_size(), raw.token_to_id("<|endoftext|>"), shape)
    )


def save_clip_immich(folder: Path, model: Any) -> None:
    """A CLIPModel's two towers as Immich's visual/ and textual/ ONNX graphs plus its configs."""
    import torch

    vision_config, text_config = model.config.vision_config, model.config.text_config
    size, context = vision_config.image_size, text_config.max_position_embeddings

    def features(output: Any) -> Any:
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    class Tower(torch.nn.Module):
        def __init__(self, visual: bool) -> None:
            super().__init__()
            self.clip, self.visual = model, visual  # a submodule: its weights are traced

        def forward(self, inputs: Any) -> Any:
            if self.visual:
                vector = features(self.clip.get_image_features(pixel_values=inputs))
            else:
                vector = features(self.clip.get_text_features(input_ids=inputs.long()))
            return torch.nn.functional.normalize(vector, dim=-1)

    for tower, module, example, name in (
        ("visual", Tower(True), torch.zeros(2, 3, size, size), "image"),
        ("textual", Tower(False), torch.zeros(2, context, dtype=torch.int32), "text"),
    ):
        (folder / tower).mkdir(parents=True)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(folder / tower / "model.onnx"),
                input_names=[name],
                output_names=["embedding"],
                dynamic_axes={name: {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    preprocess = {
        "size": [size, size],
        "mode": "RGB",
        "mean": CLIP_MEAN,
        "std": CLIP_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    _clip_tokenizer().save(str(folder / "textual" / "tokenizer.json"))
    (folder / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    config = {
        "embed_dim": model.config.projection_dim,
        "vision_cfg": {
            "image_size": size,
            "layers": vision_config.num_hidden_layers,
            "width": vision_config.hidden_size,
            "patch_size": vision_config.patch_size,
        },
        "text_cfg": {
            "context_length": context,
            "vocab_size": text_config.vocab_size,
            "width": text_config.hidden_size,
            "heads": text_config.num_attention_heads,
            "layers": text_config.num_hidden_layers,
        },
    }
    (folder / "config.json").write_text(json.dumps(config))


def save_tiny_clip_immich_built(folder: Path) -> None:
    """tiny-clip built under folder/hf (same seed, same weights), exported to folder/model."""
    save_tiny_clip(folder / "hf")
    save_tiny_clip_immich(folder / "model", folder / "hf")


def _pooled_head(
    nodes: list[Any],
    inits: list[Any],
    stride: int,
    name: str,
    channels: int,
    weight: float,
    bias: list[float],
    rows: int,
) -> None:
    """pooled input -> 1x1 conv -> NHWC -> [cells * anchors, rows] named `name`."""
    from onnx import helper, numpy_helper

    prefix = f"s{stride}_{name}"
    weights = np.full((channels, 3, 1, 1), weight, dtype=np.float32)
    inits += [
        numpy_helper.from_array(weights, f"{prefix}_w"),
        numpy_helper.from_array(np.array(bias, np.float32), f"{prefix}_b"),
        numpy_helper.from_array(np.array([-1, rows], np.int64), f"{prefix}_shape"),
    ]
    conv = f"{prefix}_conv"
    nodes.append(helper.make_node("Conv", [f"pool{stride}", f"{prefix}_w", f"{prefix}_b"], [conv]))
    if rows == 1:
        nodes.append(helper.make_node("Sigmoid", [conv], [f"{prefix}_sig"]))
        conv = f"{prefix}_sig"
    nodes.append(helper.make_node("Transpose", [conv], [f"{prefix}_nhwc"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Reshape", [f"{prefix}_nhwc", f"{prefix}_shape"], [name]))


def scrfd_graph(size: int = 640) -> Any:
    """SCRFD's interface: input.1 [1, 3, size, size] -> per stride scores [N, 1], box distances
    [N, 4] and keypoint offsets [N, 10] (N = cells x 2 anchors). Only stride 32 scores: a cell
    whose pixels are white scores ~1, black ~0; its box is the cell, its keypoints FACE_POINTS."""
    from onnx import TensorProto, helper

    nodes: list[Any] = []
    inits: list[Any] = []
    columns: list[list[Any]] = [[], [], []]  # the outputs' order: scores, boxes, keypoints
    for stride, names in SCRFD_OUTPUTS.items():
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["input.1"],
                [f"pool{stride}"],
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        live = stride == 32
        _pooled_head(
            nodes,
            inits,
            stride,
            names[0],
            2,
            10.0 if live else 0.0,
            [-15.0 if live else -20.0] * 2,
            1,
        )
        _pooled_head(nodes, inits, stride, names[1], 8, 0.0, [0.0, 0.0, 1.0, 1.0] * 2, 4)
        offsets = [float(v) for point in FACE_POINTS for v in point]
        _pooled_head(nodes, inits, stride, names[2], 20, 0.0, offsets * 2, 10)
        count = (size // stride) ** 2 * 2
        for column, (name, width) in enumerate(zip(names, (1, 4, 10), strict=True)):
            columns[column].append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, [count, width])
            )
    infos = [info for column in columns for info in column]
    graph = helper.make_graph(
        nodes,
        "scrfd-test",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        infos,
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def arcface_graph(seed: int = 0) -> Any:
    """ArcFace's interface: input.1 [n, 3, 112, 112] -> 683 [n, 512] (pooling + a random
    projection: different faces give different vectors)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(size=(3 * 7 * 7, 512)).astype(np.float32)
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "projection"], [ARCFACE_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface-test",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info(ARCFACE_OUTPUT, TensorProto.FLOAT, ["n", 512])],
        [numpy_helper.from_array(weights, "projection")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_tiny_buffalo(folder: Path) -> None:
    import onnx

    for part, model in (("detection", scrfd_graph()), ("recognition", arcface_graph())):
        (folder / part).mkdir(parents=True)
        onnx.checker.check_model(model)
        onnx.save(model, str(folder / part / "model.onnx"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Random CLIP weights in Immich's ONNX layout")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--immich", type=Path, required=True, help="folder to write (new)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(args.seed)
    save_random_clip_immich(args.immich, SHAPES[args.shape])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
