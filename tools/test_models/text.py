"""Tiny BERT-era look-alikes: a BLIP captioner, a TrOCR line recogniser, a cross-encoder
reranker and a CLS-pooled sentence-transformers embedder."""

from __future__ import annotations

import string
from pathlib import Path

from tools.test_models.shapes import (
    CAPTION_WORDS,
    INIT_STD,
    SIZE,
    SPECIALS,
    bert_words,
    tiny_bert_config,
    vision_layers,
)


def save_blip(folder: Path) -> None:
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
        vision_config=vision_layers(),
        text_config=text,
        projection_dim=SIZE,
        initializer_range=INIT_STD,
    )
    model = BlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": SIZE, "width": SIZE})
    model.save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def save_trocr(folder: Path) -> None:
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
    encoder = ViTConfig(**vision_layers())
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


def save_reranker(folder: Path) -> None:
    """A cross-encoder as bge-reranker and ms-marco ship them: a plain transformers
    BertForSequenceClassification with one label and its tokenizer (no sentence-transformers
    files), so CrossEncoder applies its default sigmoid. 64 positions: long pairs truncate."""
    from transformers import BertForSequenceClassification, BertTokenizer

    words = bert_words()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, model_max_length=64)
    config = tiny_bert_config(len(words))
    config.num_labels = 1  # one relevance logit
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_cls_embedder(folder: Path) -> None:
    """A sentence-transformers model with CLS pooling and no Normalize (all-MiniLM is mean +
    Normalize): the other branch of the torch-free embedding pipeline."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    from transformers import BertModel, BertTokenizer

    words = bert_words()
    bert_dir = folder / "bert"
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(bert_dir)
    config = tiny_bert_config(len(words))
    BertModel(config).save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=48)
    pooling = Pooling(SIZE, pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder / "model"))
