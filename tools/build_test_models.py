"""Tiny, randomly initialised test models, imported into a data dir's cache.

The hub is out of reach here, so tests and demos run on look-alikes of the real checkpoints:
a BLIP captioner, a LLaVA chat model (CLIP vision tower, Llama text model, byte-level BPE
tokenizer, LLaVA-1.5's chat template), Qwen2-VL, SmolVLM (Idefics3) and Florence-2 look-alikes
on the same tokenizer, a TrOCR line recogniser and a BERT cross-encoder
reranker with the real classes and file layout, 32-wide and 2 layers deep, built from a fixed
seed (same weights, same files, same revision).

    python tools/build_test_models.py --data-dir DIR [--only caption|llava|qwen2-vl|...]
"""

from __future__ import annotations

import argparse
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frontend.models.cache import import_model, is_downloaded
from tools.build_clip_models import save_tiny_buffalo, save_tiny_clip, save_tiny_clip_immich_built

TINY_BLIP = "homelab-test/tiny-blip"
TINY_LLAVA = "homelab-test/tiny-llava"
TINY_QWEN2_VL = "homelab-test/tiny-qwen2-vl"
TINY_SMOLVLM = "homelab-test/tiny-smolvlm"
TINY_FLORENCE2 = "homelab-test/tiny-florence2"
TINY_TROCR = "homelab-test/tiny-trocr"
TINY_CLS_EMBEDDER = "homelab-test/tiny-cls-embedder"
TINY_RERANKER = "homelab-test/tiny-reranker"
TINY_CLIP = "homelab-test/tiny-clip"  # image embedding (tools/build_clip_models.py)
TINY_CLIP_IMMICH = "homelab-test/tiny-clip-immich"
TINY_BUFFALO = "homelab-test/tiny-buffalo"
SEED = 0
SIZE = 32  # image side, hidden width
# Weights drawn wider than the usual 0.02: with tiny std every image yields the same caption,
# and tests could not tell whether a batch kept its images apart.
INIT_STD = 0.2
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CAPTION_WORDS = [
    *("a", "an", "the", "of", "on", "in", "with", "and", "is", "are", "there", "two"),
    *("cat", "dog", "man", "woman", "child", "car", "bus", "tree", "sky", "street"),
    *("table", "room", "picture", "photo", "red", "blue", "green", "white", "black"),
    *("sitting", "standing", "holding", "next", "to", "front", "large", "small"),
]


def _vision_layers() -> dict[str, Any]:
    return {
        "hidden_size": SIZE,
        "intermediate_size": 2 * SIZE,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": SIZE,
        "patch_size": 8,
        "initializer_range": INIT_STD,
    }


def _save_blip(folder: Path) -> None:
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = [*SPECIALS, "[DEC]", *dict.fromkeys(CAPTION_WORDS)]
    # BLIP's decoder starts from [DEC] (its tokenizer's bos) and stops at [SEP].
    tokenizer = BertTokenizer(
        vocab={word: i for i, word in enumerate(words)}, bos_token="[DEC]", model_max_length=64
    )
    text = {
        "vocab_size": len(words),
        "hidden_size": SIZE,
        "intermediate_size": 2 * SIZE,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "encoder_hidden_size": SIZE,
        "max_position_embeddings": 64,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "initializer_range": INIT_STD,
    }
    config = BlipConfig(
        vision_config=_vision_layers(),
        text_config=text,
        projection_dim=SIZE,
        initializer_range=INIT_STD,
    )
    model = BlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": SIZE, "width": SIZE})
    model.save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


VLM_SPECIALS = ["<pad>", "<s>", "</s>", "<image>"]
# LLaVA-1.5's own template (USER/ASSISTANT), images before the text of their turn.
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ message['content'][0]['text'] }}\n"
    "{% else %}{{ message['role'].upper() }}: {% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}{% endfor %}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _bpe_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        " ".join(CAPTION_WORDS),
        "USER: ASSISTANT: system user assistant",
        "Describe this image in one sentence. What is in the picture?",
    ] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=VLM_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=512,
    )


def _printable_only(tokenizer: Any, keep: set[int]) -> list[int]:
    printable = set(string.ascii_letters + string.digits + " .,")
    return [
        i
        for i in range(len(tokenizer))
        if i not in keep
        and not (set(tokenizer.decode([i])) <= printable and tokenizer.decode([i]).strip())
    ]


def _tiny_llama(tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=SIZE,
        intermediate_size=2 * SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=INIT_STD,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _save_llava(folder: Path) -> None:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _bpe_tokenizer()
    vision = CLIPVisionConfig(
        image_size=16,
        patch_size=4,
        hidden_size=SIZE,
        intermediate_size=2 * SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=SIZE,
        initializer_range=INIT_STD,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_tiny_llama(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.suppress_tokens = _printable_only(tokenizer, {tokenizer.eos_token_id})
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
    )
    model.save_pretrained(folder)
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=4,
        num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_TEMPLATE,
    ).save_pretrained(folder)


QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)
# SmolVLM-Instruct's template, images inline: "<|im_start|>User:<image>What?<end_of_utterance>"
SMOL_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _chat_tokenizer(extra: list[str]) -> tuple[Any, dict[str, int]]:
    """The byte-level BPE tokenizer plus a family's own special tokens, and their ids."""
    tokenizer = _bpe_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": extra})
    return tokenizer, {token: tokenizer.convert_tokens_to_ids(token) for token in extra}


def _end_turns_at(model: Any, tokenizer: Any, eos: int) -> None:
    """The family's end-of-turn token ends generation; output kept printable."""
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.suppress_tokens = _printable_only(tokenizer, {eos})


def _save_qwen2_vl(folder: Path) -> None:
    """Qwen2-VL's classes (Qwen2.5-VL's differ only in the vision tower's window attention):
    16 px patches of 4, merged 2x2, so a 16x16 image is 4 tokens; M-RoPE over 8-wide heads."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    from frontend.tasks.common import image_only_processor

    tokenizer, ids = _chat_tokenizer(
        [
            *("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"),
            *("<|image_pad|>", "<|video_pad|>"),
        ]
    )
    text = _tiny_llama(tokenizer).to_dict() | {
        "eos_token_id": ids["<|im_end|>"],
        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 1, 1]},
    }
    vision = {
        "depth": 2,
        "embed_dim": SIZE,
        "hidden_size": SIZE,
        "num_heads": 4,
        "mlp_ratio": 2,
        "patch_size": 4,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "initializer_range": INIT_STD,
    }
    config = Qwen2VLConfig(
        text_config={k: text[k] for k in QWEN_TEXT_KEYS},
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = Qwen2VLForConditionalGeneration(config).eval()
    _end_turns_at(model, tokenizer, ids["<|im_end|>"])
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=8 * 8, max_pixels=16 * 16, patch_size=4, merge_size=2, temporal_patch_size=2
    )
    model.save_pretrained(folder)
    processor = image_only_processor(Qwen2VLProcessor)
    processor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN_TEMPLATE
    ).save_pretrained(folder)


# The Llama settings Qwen2-VL's text config shares with the tiny Llama.
QWEN_TEXT_KEYS = (
    *("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers"),
    *("num_attention_heads", "num_key_value_heads", "max_position_embeddings"),
    *("initializer_range", "pad_token_id", "bos_token_id", "eos_token_id", "rope_parameters"),
)


def _save_smolvlm(folder: Path) -> None:
    """SmolVLM-256M/500M's classes (Idefics3: SigLIP tower, pixel shuffle, Llama text model):
    one 16 px image, no splitting, 16 patches shuffled by 2 into 4 image tokens."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokenizer, ids = _chat_tokenizer(
        [
            *("<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"),
            "<global-img>",
        ]
    )
    text = _tiny_llama(tokenizer)
    text.eos_token_id = ids["<end_of_utterance>"]
    vision = {**_vision_layers(), "image_size": 16, "patch_size": 4}
    config = Idefics3Config(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<image>"],
        scale_factor=2,
    )
    model = Idefics3ForConditionalGeneration(config).eval()
    _end_turns_at(model, tokenizer, ids["<end_of_utterance>"])
    edge = {"longest_edge": 16}
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False, size=edge, max_image_size=edge
    )
    model.save_pretrained(folder)
    Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,
        chat_template=SMOL_TEMPLATE,
    ).save_pretrained(folder)


def _save_florence2(folder: Path) -> None:
    """Florence-2's transformers-native classes (DaViT tower, BART encoder-decoder, task
    tokens): two 32-wide DaViT stages turn a 32 px image into 4x4 + 1 image tokens."""
    from transformers import (
        BartConfig,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        PreTrainedTokenizerFast,
    )

    bpe, _ = _chat_tokenizer(["<image>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe.backend_tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=512,
        extra_special_tokens={"image_token": "<image>"},  # Florence2Processor reads it
    )
    start, pad, eos = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id
    text = BartConfig(
        vocab_size=len(tokenizer),
        d_model=SIZE,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=2 * SIZE,
        decoder_ffn_dim=2 * SIZE,
        max_position_embeddings=128,
        init_std=INIT_STD,
        pad_token_id=pad,
        bos_token_id=start,
        eos_token_id=eos,
        decoder_start_token_id=eos,
        forced_eos_token_id=eos,
    )
    vision = {
        "depths": [1, 1],
        "patch_size": [7, 3],
        "patch_stride": [4, 2],
        "patch_padding": [3, 1],
        "patch_prenorm": [False, True],
        "embed_dim": [SIZE, SIZE],
        "num_heads": [4, 4],
        "num_groups": [4, 4],
        "window_size": 2,
        "drop_path_rate": 0.0,
        "projection_dim": SIZE,
        "max_position_embeddings": 8,
        "max_temporal_embeddings": 4,
        "initializer_range": INIT_STD,
    }
    config = Florence2Config(
        text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id
    )
    model = Florence2ForConditionalGeneration(config).eval()
    model.generation_config.suppress_tokens = _printable_only(tokenizer, {eos})
    model.generation_config.num_beams = 1  # the real checkpoints ask for 3
    image_processor = CLIPImageProcessor(
        size={"height": SIZE, "width": SIZE}, do_center_crop=False, image_seq_length=17
    )
    model.save_pretrained(folder)
    Florence2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _save_trocr(folder: Path) -> None:
    import torch
    from transformers import (
        BertTokenizer,
        TrOCRConfig,
        TrOCRProcessor,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    characters = list(string.ascii_lowercase + string.digits + ".,:-")
    words = [*SPECIALS, *characters, *(f"##{c}" for c in characters)]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(words)}, model_max_length=64)
    start, pad, eos = tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id
    encoder = ViTConfig(**_vision_layers())
    decoder = TrOCRConfig(
        vocab_size=len(words),
        d_model=SIZE,
        decoder_layers=2,
        decoder_attention_heads=4,
        decoder_ffn_dim=2 * SIZE,
        max_position_embeddings=64,
        cross_attention_hidden_size=SIZE,
        init_std=INIT_STD,
        pad_token_id=pad,
        bos_token_id=start,
        eos_token_id=eos,
        decoder_start_token_id=start,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = start, pad, eos
    model = VisionEncoderDecoderModel(config).eval()
    # Make the random recogniser look like a reader: never emit the specials that decode to
    # nothing, and end some lines early (an end token likelier than chance) so batches mix
    # finished and running sequences. Its output projection is tied to the token embeddings.
    model.generation_config.suppress_tokens = [
        pad,
        start,
        tokenizer.unk_token_id,
        tokenizer.mask_token_id,
    ]
    with torch.no_grad():
        model.decoder.get_output_embeddings().weight[eos] *= 2
    image_processor = ViTImageProcessor(size={"height": SIZE, "width": SIZE})
    model.save_pretrained(folder)
    TrOCRProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _bert_words() -> list[str]:
    """The tiny BERTs' vocabulary: specials, the caption words, letters and digits."""
    return [*SPECIALS, *dict.fromkeys(CAPTION_WORDS), *string.ascii_lowercase, *string.digits]


def _tiny_bert_config(vocab_size: int) -> Any:
    """The shape every tiny test BERT shares (reranker, CLS-pooled embedder)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=SIZE,
        intermediate_size=2 * SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        initializer_range=INIT_STD,
    )


def _save_reranker(folder: Path) -> None:
    """A cross-encoder as bge-reranker and ms-marco ship them: a plain transformers
    BertForSequenceClassification with one label and its tokenizer (no sentence-transformers
    files), so CrossEncoder applies its default sigmoid. 64 positions: long pairs truncate."""
    from transformers import BertForSequenceClassification, BertTokenizer

    words = _bert_words()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, model_max_length=64)
    config = _tiny_bert_config(len(words))
    config.num_labels = 1  # one relevance logit
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


BUILDERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "caption": (TINY_BLIP, _save_blip),
    "llava": (TINY_LLAVA, _save_llava),
    "qwen2-vl": (TINY_QWEN2_VL, _save_qwen2_vl),
    "smolvlm": (TINY_SMOLVLM, _save_smolvlm),
    "florence2": (TINY_FLORENCE2, _save_florence2),
    "ocr": (TINY_TROCR, _save_trocr),
    "rerank": (TINY_RERANKER, _save_reranker),
}


def _save_cls_embedder(folder: Path) -> None:
    """A sentence-transformers model with CLS pooling and no Normalize (all-MiniLM is mean +
    Normalize): the other branch of the torch-free embedding pipeline."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    from transformers import BertModel, BertTokenizer

    words = _bert_words()
    bert_dir = folder / "bert"
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(bert_dir)
    config = _tiny_bert_config(len(words))
    BertModel(config).save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=48)
    pooling = Pooling(SIZE, pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder / "model"))


# built only when asked for by name (--only cls-embedding): the unit tests of the embedding
# pipeline need it, the integration suite does not
ON_REQUEST: dict[str, tuple[str, Callable[[Path], None]]] = {
    "cls-embedding": (TINY_CLS_EMBEDDER, _save_cls_embedder),
    # image embedding and faces (tests/integration/test_image_embedding.py, test_immich.py)
    "clip": (TINY_CLIP, save_tiny_clip),
    "clip-immich": (TINY_CLIP_IMMICH, save_tiny_clip_immich_built),
    "faces": (TINY_BUFFALO, save_tiny_buffalo),
}


def build_test_models(data_dir: Path, only: str | None = None) -> dict[str, str]:
    """Build what is missing from DATA_DIR/models/hub; returns task name -> model id."""
    import torch

    if only is not None and only not in {**BUILDERS, **ON_REQUEST}:
        raise ValueError(f"unknown model group {only!r}; choose from {sorted(BUILDERS)}")
    hub = Path(data_dir) / "models" / "hub"
    built: dict[str, str] = {}
    groups = {**BUILDERS, **({only: ON_REQUEST[only]} if only in ON_REQUEST else {})}
    for name, (model_id, save) in groups.items():
        if only not in (None, name):
            continue
        built[name] = model_id
        if is_downloaded(hub, model_id):
            continue
        # Seeded per model (so --only builds the same weights) without touching the caller's RNG.
        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(SEED)
            save(Path(tmp))
            saved = Path(tmp) / "model"  # builders that need scratch space save under model/
            import_model(saved if saved.is_dir() else Path(tmp), model_id, hub)
    return built


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--only", choices=sorted({**BUILDERS, **ON_REQUEST}))
    args = parser.parse_args(argv)
    for name, model_id in build_test_models(args.data_dir, args.only).items():
        print(f"{name}: {model_id}")


if __name__ == "__main__":
    main()
