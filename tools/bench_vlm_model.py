"""SmolVLM-256M-Instruct's shape with random weights, built offline for tools/bench_vlm.py:
Idefics3 (SigLIP-base tower at `image_side` px, pixel shuffle by 4, a 30-layer 576-wide Llama
text model, 49,280-token vocabulary), a small trained BPE, SmolVLM's chat template."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

MODEL_ID = "homelab-bench/smolvlm-256m-shape"
PROMPT = "Describe this image in one sentence."
SMOL_TEMPLATE = (  # SmolVLM-Instruct's chat template
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
SPECIALS = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"]
WORDS = "a the of on in with and is cat dog man woman car tree sky street red blue small large"


def _tokenizer() -> Any:
    """A byte-level BPE trained in a second (the real one is a 49k BPE: ids past this one's
    vocabulary are suppressed at generation)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<s>", "</s>", "<global-img>", *SPECIALS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([WORDS, PROMPT, "User: Assistant:"] * 8, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="<end_of_utterance>"
    )


def save_smolvlm_shape(folder: Path, image_side: int) -> None:
    """SmolVLM-256M-Instruct's config (vision image_size = `image_side`), random weights."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        LlamaConfig,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokenizer = _tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIALS}
    text = LlamaConfig(
        vocab_size=49280,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=ids["<end_of_utterance>"],
    )
    vision = {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": image_side,
        "patch_size": 16,
    }
    config = Idefics3Config(
        text_config=text, vision_config=vision, scale_factor=4, image_token_id=ids["<image>"]
    )
    model = Idefics3ForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.eos_token_id = ids["<end_of_utterance>"]
    generation.pad_token_id = tokenizer.pad_token_id
    # No end token and no id the tokenizer lacks: every answer runs to max_new_tokens, on
    # both sides, and decodes to text.
    keep = set(range(len(tokenizer))) - set(tokenizer.all_special_ids)
    generation.suppress_tokens = [i for i in range(text.vocab_size) if i not in keep]
    model.save_pretrained(folder)
    edge = {"longest_edge": image_side}
    Idefics3Processor(
        image_processor=Idefics3ImageProcessorPil(
            do_image_splitting=False, size=edge, max_image_size=edge
        ),
        tokenizer=tokenizer,
        image_seq_len=(image_side // 16) ** 2 // 16,
        chat_template=SMOL_TEMPLATE,
    ).save_pretrained(folder)


def prepare_model(data_dir: Path, image_side: int) -> Path:
    import torch

    from frontend.models.cache import import_model, snapshot_path

    hub = data_dir / "models" / "hub"
    found = snapshot_path(hub, MODEL_ID)
    if found is not None:
        return Path(found)
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        save_smolvlm_shape(Path(tmp), image_side)
        return Path(import_model(Path(tmp), MODEL_ID, hub).snapshot)
