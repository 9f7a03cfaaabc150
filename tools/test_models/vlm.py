"""Tiny vision-language look-alikes: LLaVA (CLIP vision tower, Llama text model, byte-level BPE
tokenizer, LLaVA-1.5's chat template), Qwen2-VL, SmolVLM (Idefics3) and Florence-2."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from tools.test_models.shapes import CAPTION_WORDS, INIT_STD, SIZE, vision_layers

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


def save_llava(folder: Path) -> None:
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


def save_qwen2_vl(folder: Path) -> None:
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


def save_smolvlm(folder: Path) -> None:
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
    vision = {**vision_layers(), "image_size": 16, "patch_size": 4}
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


def save_florence2(folder: Path) -> None:
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
