"""Which OCR model a request's `lang` goes to, the languages each model lists, and the Debian
packages tools/install.sh installs for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontend.core.config import ConfigError, ModelEntry, Settings, Task, load_settings
from frontend.core.errors import InvalidRequest
from frontend.images.languages import choose_ocr_model, model_languages
from frontend.models.catalog import ModelCatalog
from frontend.triton.repository import build_config, shipped_task_code_dir
from tools.tesseract_packages import packages

RAPID = {"id": "rapid", "hf_model": "rapidocr/PP-OCRv4", "default": True}
TESS = {"id": "tess", "hf_model": "tesseract/5", "languages": ["en", "deu", "fra"]}
TROCR = {"id": "trocr", "hf_model": "microsoft/trocr-base-printed"}


@pytest.fixture(autouse=True)
def tessdata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tessdata folder with English and German installed (French is not)."""
    for code in ("eng", "deu", "osd"):
        (tmp_path / f"{code}.traineddata").touch()
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    return tmp_path


def catalog(*entries: dict[str, Any]) -> ModelCatalog:
    return ModelCatalog(Settings(models={"ocr": list(entries)}))


def choose(models: ModelCatalog, lang: str | None, model: str | None = None) -> tuple[str, Any]:
    entry, parameters = choose_ocr_model(models, model, lang)
    return entry.id, parameters


def test_languages_per_engine() -> None:
    models = catalog(RAPID, TESS, TROCR, {"id": "all", "hf_model": "tesseract/5"})
    entries = {found.entry.id: found.entry for found in models.all()}

    assert model_languages(entries["rapid"]) == ["chi_sim", "eng"]
    assert model_languages(entries["tess"]) == ["eng", "deu"]  # fra: configured, not installed
    assert model_languages(entries["all"]) == ["eng", "deu"]  # every installed one, eng first
    assert model_languages(entries["trocr"]) is None


@pytest.mark.parametrize(
    ("lang", "model", "chosen"),
    [
        (None, None, ("rapid", {})),
        ("eng", None, ("rapid", {})),  # the default reads it
        ("de", None, ("tess", {"lang": "deu"})),  # the first model that reads it
        ("deu+en", None, ("tess", {"lang": "deu+eng"})),
        ("eng", "tess", ("tess", {"lang": "eng"})),
        ("chi_sim", None, ("rapid", {})),
    ],
)
def test_lang_picks_the_default_else_the_first_model_that_reads_it(
    lang: str | None, model: str | None, chosen: tuple[str, Any]
) -> None:
    assert choose(catalog(RAPID, TROCR, TESS), lang, model) == chosen


@pytest.mark.parametrize(
    ("lang", "model", "words", "details"),
    [
        ("xx", None, ["unknown language 'xx'", "chi_sim, deu, eng"], {}),
        ("deu", "rapid", ["'rapid' does not read deu", "models that do: tess"], {}),
        ("fra", None, ["no enabled OCR model reads fra", "tesseract-ocr-fra"], {"fra": 1}),
        ("eng", "trocr", ["'trocr' does not read eng"], {}),
    ],
)
def test_languages_no_model_reads_are_refused(
    lang: str, model: str | None, words: list[str], details: dict[str, int]
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        choose(catalog(RAPID, TROCR, TESS), lang, model)

    assert caught.value.status == 400
    for word in words:
        assert word in caught.value.message
    assert caught.value.details["available_languages"] == ["chi_sim", "deu", "eng"]
    if details:
        assert caught.value.details["debian_packages"] == ["tesseract-ocr-fra"]


def test_installed_language_left_out_of_the_list_says_to_add_it() -> None:
    models = catalog(RAPID, {**TESS, "languages": ["eng"]})

    with pytest.raises(InvalidRequest, match="add it to the model's `languages`") as caught:
        choose(models, "deu")
    assert "debian_packages" not in caught.value.details  # deu is installed already


def test_config_rejects_unknown_languages() -> None:
    with pytest.raises(ConfigError, match=r"models\.ocr\.0\.languages.*unknown language 'qq'"):
        load_settings(None, models={"ocr": [{**TESS, "languages": ["eng", "qq"]}]})


def test_install_script_packages_follow_the_enabled_tesseract_models() -> None:
    settings = Settings(models={"ocr": [RAPID, {**TESS, "languages": ["chi_sim", "de"]}]})
    assert packages(settings) == [
        "tesseract-ocr",
        "tesseract-ocr-chi-sim",
        "tesseract-ocr-deu",
        "tesseract-ocr-osd",
    ]
    default = Settings(models={"ocr": [{"id": "t", "hf_model": "tesseract/5"}]})
    assert packages(default) == ["tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-osd"]
    assert packages(Settings(models={"ocr": [RAPID, {**TESS, "enabled": False}]})) == []


def test_triton_entry_carries_the_first_language_as_the_default() -> None:
    template = shipped_task_code_dir() / "ocr" / "config.pbtxt"
    entry = ModelEntry.model_validate({**TESS, "languages": ["de", "eng"]})

    config = build_config(template, entry, Task.OCR)

    assert config.parameters["lang"].string_value == "deu"
    assert config.parameters["hf_model"].string_value == "tesseract/5"
    plain = build_config(template, ModelEntry.model_validate(RAPID), Task.OCR)
    assert "lang" not in plain.parameters
