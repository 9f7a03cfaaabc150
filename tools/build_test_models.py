"""Tiny, randomly initialised test models, imported into a data dir's cache.

The hub is out of reach here, so tests and demos run on look-alikes of the real checkpoints:
a BLIP captioner, a LLaVA chat model (CLIP vision tower, Llama text model, byte-level BPE
tokenizer, LLaVA-1.5's chat template), a TrOCR line recogniser and a BERT cross-encoder
reranker with the real classes and file layout, 32-wide and 2 layers deep, built from a fixed
seed (same weights, same files, same revision).

    python tools/build_test_models.py --data-dir DIR [--only caption|llava|ocr|rerank]
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
    # image embedding and faces (tests/integration/test_immich.py)
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
