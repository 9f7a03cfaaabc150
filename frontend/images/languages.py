"""OCR languages on the frontend: what each OCR model reads, and which model serves a `lang`.

The rule for a request with `lang` and no `model`: the default OCR model if it reads every
language asked for, else the first enabled OCR model (config.yaml order, then those added at
runtime) that does. With `model`, that model must read them. Otherwise 400 INVALID_REQUEST.
"""

from __future__ import annotations

from frontend.core.config import ModelEntry, Task
from frontend.core.errors import InvalidRequest
from frontend.models.catalog import ModelCatalog
from frontend.tasks.common import builtin_engine
from frontend.tasks.ocr_languages import (
    RAPIDOCR_LANGUAGES,
    debian_package,
    installed_languages,
    parse_lang,
)

DEFAULT_TESSERACT = "eng"


def model_languages(entry: ModelEntry) -> list[str] | None:
    """The languages an OCR model reads, its default first; None when undeclared (a Hugging
    Face model without `languages`, or Tesseract whose data this host cannot see)."""
    engine = builtin_engine(entry.hf_model)
    if engine == "rapidocr":
        return list(entry.languages or RAPIDOCR_LANGUAGES)
    if engine != "tesseract":
        return None if entry.languages is None else list(entry.languages)
    installed = installed_languages()
    if installed is None:  # Triton elsewhere (Docker): believe the configuration
        return None if entry.languages is None else list(entry.languages)
    if entry.languages is not None:
        return [code for code in entry.languages if code in installed]
    return sorted(installed, key=lambda code: code != DEFAULT_TESSERACT)


def _reads(entry: ModelEntry, codes: list[str]) -> bool:
    languages = model_languages(entry)
    if languages is None:  # unknown here: only Tesseract is trusted to check for itself
        return builtin_engine(entry.hf_model) == "tesseract"
    return all(code in languages for code in codes)


def choose_ocr_model(
    catalog: ModelCatalog, ref: str | None, lang: str | None
) -> tuple[ModelEntry, dict[str, int | str]]:
    """The OCR model for a request and its Triton parameters (`lang` for Tesseract)."""
    if lang is None:
        return catalog.lookup(ref, Task.OCR), {}
    models = [found.entry for found in catalog.all(Task.OCR)]
    offered = sorted({code for entry in models for code in model_languages(entry) or []})
    try:
        codes = parse_lang(lang)
    except ValueError as exc:
        raise InvalidRequest(
            f"invalid lang: {exc}; available languages: {', '.join(offered)}",
            {"available_languages": offered},
        ) from None
    if ref is not None:
        candidates = [catalog.lookup(ref, Task.OCR)]
    else:
        candidates = sorted(models, key=lambda entry: not catalog.is_default(Task.OCR, entry))
    chosen = next((entry for entry in candidates if _reads(entry, codes)), None)
    if chosen is None:
        raise _unreadable(codes, candidates[0] if ref is not None else None, models, offered)
    if builtin_engine(chosen.hf_model) == "tesseract":
        return chosen, {"lang": "+".join(codes)}
    return chosen, {}


def _unreadable(
    codes: list[str], named: ModelEntry | None, models: list[ModelEntry], offered: list[str]
) -> InvalidRequest:
    have = offered if named is None else model_languages(named) or []
    missing = [code for code in codes if code not in have] or codes
    asked = "+".join(missing)
    if named is not None:
        message = f"model '{named.id}' does not read {asked}"
        readers = [entry.id for entry in models if _reads(entry, codes)]
        if readers:
            message += f"; models that do: {', '.join(readers)}"
    else:
        message = f"no enabled OCR model reads {asked}"
    message += f"; available languages: {', '.join(offered) or 'none'}"
    details: dict[str, object] = {"available_languages": offered}
    tesseract = [entry for entry in models if builtin_engine(entry.hf_model) == "tesseract"]
    if tesseract and any(code not in offered for code in codes):
        installed = installed_languages() or []
        packages = [debian_package(code) for code in codes if code not in installed]
        steps = [f"install the Debian package {' '.join(packages)}"] if packages else []
        listed = [entry.languages for entry in tesseract if entry.languages is not None]
        if listed and all(any(code not in codes_of for code in codes) for codes_of in listed):
            steps.append("add it to the model's `languages` (tools/install.sh installs those)")
        message += f". For Tesseract: {' and '.join(steps)}" if steps else ""
        if packages:
            details["debian_packages"] = packages
    return InvalidRequest(message, details)
