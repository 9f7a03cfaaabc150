"""Structured output on a tiny random GPT-2: whatever the weights, the text parses and validates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessorList,
    PreTrainedTokenizerFast,
)

from frontend.vision.grammar import (
    SchemaError,
    check_schema,
    make_batch_logits_processor,
    make_logits_processor,
)

PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "kind": {"enum": ["cat", "dog"]},
        "legs": {"type": "integer", "minimum": 0, "maximum": 9},
        "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2},
    },
    "required": ["name", "kind", "legs", "tags"],
    "additionalProperties": False,
}
SMALL_OBJECT = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(['{"name": "Tom", "kind": "cat"}', "a photo of a dog"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model: more threads only spin on a busy machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    # 8 logits more than the tokenizer has, as checkpoints pad their vocabularies
    config = GPT2Config(
        vocab_size=len(tokenizer) + 8,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=512,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


def generate(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    processor: Any,
    rows: int = 1,
    **options: Any,
) -> list[str]:
    prompt = tokenizer(["a photo of"] * rows, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **prompt,
            logits_processor=LogitsProcessorList([processor]),
            max_new_tokens=120,
            pad_token_id=tokenizer.pad_token_id,
            **options,
        )
    new = out[:, prompt["input_ids"].shape[1] :]
    return tokenizer.batch_decode(new, skip_special_tokens=True)


@pytest.mark.parametrize(
    "options",
    [{"do_sample": False}, {"do_sample": True, "temperature": 1.5, "top_k": 0}],
    ids=["greedy", "sampled"],
)
def test_output_follows_the_schema(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, options: dict[str, Any]
) -> None:
    torch.manual_seed(1)
    texts = generate(model, tokenizer, make_logits_processor(tokenizer, PET, False), 3, **options)
    for text in texts:
        jsonschema.validate(json.loads(text), PET)


def test_json_mode_gives_an_object(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    torch.manual_seed(2)
    processor = make_logits_processor(tokenizer, None, True)
    text = generate(model, tokenizer, processor, do_sample=True, max_length=None)[0]
    # a random model may run out of tokens inside an open object; what it wrote is JSON's start
    assert text.startswith("{")


def test_rows_keep_their_own_constraints(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    processor = make_batch_logits_processor(
        tokenizer, [(SMALL_OBJECT, False), (None, False), (PET, False)]
    )
    constrained, free, pet = generate(model, tokenizer, processor, 3, do_sample=False)
    jsonschema.validate(json.loads(constrained), SMALL_OBJECT)
    jsonschema.validate(json.loads(pet), PET)
    unconstrained = generate(
        model, tokenizer, make_batch_logits_processor(tokenizer, [(None, False)]), 1
    )[0]
    assert free == unconstrained  # a free row is left exactly as the model would write it


def test_beam_search_rows_follow_their_beams(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    processor = make_logits_processor(tokenizer, SMALL_OBJECT, False)
    texts = generate(model, tokenizer, processor, 2, num_beams=3, do_sample=False)
    for text in texts:
        jsonschema.validate(json.loads(text), SMALL_OBJECT)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strin"},
        {"type": "object", "properties": {"a": {"minLength": -1}}},
        {"required": "name"},
        {"enum": "cat"},
    ],
    ids=["unknown-type", "negative-length", "required-not-list", "enum-not-list"],
)
def test_a_schema_that_is_not_a_schema_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="not a JSON schema"):
        check_schema(schema)


def test_a_deeply_nested_schema_is_refused_not_crashed() -> None:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(5000):
        schema = {"type": "array", "items": schema}
    with pytest.raises(SchemaError):
        check_schema(schema)


def test_no_constraint_and_any_object_pass() -> None:
    check_schema(None, False)
    check_schema(None, True)
    check_schema(PET)


def test_a_wordpiece_tokenizer_is_refused_clearly(tmp_path: Any) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"]))
    wordpiece = BertTokenizer(vocab=str(vocab))  # BLIP's kind: llguidance cannot read it
    with pytest.raises(SchemaError, match="cannot constrain"):
        make_logits_processor(wordpiece, PET, False)


def test_the_grammar_wins_over_suppressed_tokens(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    """A checkpoint's suppress_tokens (test models keep to printable text so) may rule out
    every token the schema allows next: the output still follows the schema."""
    quote_and_brace = [i for t, i in tokenizer.get_vocab().items() if set(t) & set('{"')]
    processor = make_logits_processor(tokenizer, SMALL_OBJECT, False)
    text = generate(model, tokenizer, processor, suppress_tokens=quote_and_brace)[0]
    jsonschema.validate(json.loads(text), SMALL_OBJECT)
