"""The JSON constraint a request asks for, checked and compiled without torch or a tokenizer:
the APIs run it before any inference, so a schema that is no schema is a 400."""

from __future__ import annotations

from typing import Any

import jsonschema
import llguidance

# JSON mode (Ollama's format "json", OpenAI's json_object): any object, as both APIs promise.
ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Compact JSON: with free whitespace a weak model can emit blanks until max_new_tokens.
_COMPILE_OPTIONS: Any = {"whitespace_flexible": False}


class SchemaError(ValueError):
    """The schema is not a JSON schema, or uses what the grammar compiler cannot constrain."""


def grammar_for(json_schema: dict[str, Any] | None, json_mode: bool) -> str | None:
    """The llguidance grammar of a request's constraint (None: unconstrained); SchemaError if
    the schema is no schema. Needs no tokenizer: the frontend calls it before Triton."""
    if json_schema is None and not json_mode:
        return None
    schema = ANY_OBJECT if json_schema is None else json_schema
    if not isinstance(schema, dict):
        raise SchemaError("the schema must be a JSON object")
    try:
        validator = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
        validator.check_schema(schema)
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_COMPILE_OPTIONS)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.path) or "(top)"
        raise SchemaError(f"not a JSON schema: at {where}: {error.message[:200]}") from None
    except (RecursionError, ValueError):
        raise SchemaError("not a JSON schema (too deep or not serialisable)") from None
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise SchemaError(f"the schema cannot be used to constrain output: {problem[:200]}")
    return grammar


def check_schema(json_schema: dict[str, Any] | None, json_mode: bool = False) -> None:
    """SchemaError unless the constraint compiles (the APIs answer 400 before any inference)."""
    grammar_for(json_schema, json_mode)
