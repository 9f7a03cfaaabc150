"""POST /api/ocr with the Tesseract engine and `lang` on a real Triton; languages in /api/models."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import ocr_pages
from tests.images import b64, encode, render_text

GERMAN = render_text(["Grüße aus Köln", "Äpfel und Öl"], size=(640, 200))


def ocr(client: httpx.Client, image: Image.Image, **options: Any) -> Any:
    response = client.post("/api/ocr", json={"image": b64(encode(image)), **options})
    assert response.status_code == 200, response.text
    return response.json()


def test_tesseract_reads_a_two_column_page_with_boxes(client: httpx.Client) -> None:
    page, truth = ocr_pages.two_columns()

    body = ocr(client, Image.fromarray(page), model="tesseract")

    assert body["model_used"] == "tesseract"
    assert body["text"] == truth  # left column first, then the right one
    height, width = page.shape[:2]
    for line in body["lines"]:
        assert 0.5 < line["confidence"] <= 1.0
        assert len(line["box"]) == 4
        assert all(0 <= x <= width and 0 <= y <= height for x, y in line["box"])
    assert [line["block"] for line in body["lines"]] == sorted(
        line["block"] for line in body["lines"]
    )
    assert len({line["block"] for line in body["lines"]}) >= 2  # the columns are blocks


def test_lang_deu_goes_to_tesseract_and_reads_umlauts(client: httpx.Client) -> None:
    english_only = ocr(client, GERMAN, model="tesseract")
    assert english_only["text"] != "Grüße aus Köln\nÄpfel und Öl"  # English data misreads it

    body = ocr(client, GERMAN, lang="deu")  # no model: the default (RapidOCR) cannot read it

    assert body["model_used"] == "tesseract"
    assert body["text"] == "Grüße aus Köln\nÄpfel und Öl"
    form = client.post(
        "/api/ocr",
        files=[("image", ("de.png", encode(GERMAN), "image/png"))],
        data={"lang": "de+en"},
    )
    assert form.status_code == 200, form.text
    assert form.json()["text"] == body["text"]


def test_lang_the_default_model_reads_stays_with_it(client: httpx.Client) -> None:
    body = ocr(client, render_text(["Hello Triton 2026"]), lang="en")

    assert body["model_used"] == "rapidocr"
    assert body["text"] == "Hello Triton 2026"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"lang": "xx"}, ["unknown language 'xx'", "chi_sim, deu, eng"]),
        ({"lang": "deu", "model": "rapidocr"}, ["does not read deu", "models that do: tesseract"]),
        ({"lang": "spa"}, ["no enabled OCR model reads spa", "model's `languages`"]),
        ({"lang": "eng", "model": "tiny-trocr"}, ["'tiny-trocr' does not read eng"]),
        ({"lang": ""}, ["lang"]),
        ({"lang": ["deu"]}, ["lang"]),
    ],
)
def test_languages_no_model_reads_get_400(
    client: httpx.Client, options: dict[str, Any], words: list[str]
) -> None:
    response = client.post("/api/ocr", json={"image": b64(encode(GERMAN)), **options})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    for word in words:
        assert word in error["message"]


def test_models_list_ocr_languages(client: httpx.Client) -> None:
    response = client.get("/api/models/ocr")
    assert response.status_code == 200, response.text
    models = {m["config_id"]: m for m in response.json()["models"] if m["config_id"]}

    assert models["tesseract"]["languages"] == ["eng", "deu"]
    assert models["tesseract"]["builtin"] is True and models["tesseract"]["id"] == "tesseract/5"
    assert models["rapidocr"]["languages"] == ["chi_sim", "eng"]
    assert models["tiny-trocr"]["languages"] is None
    embedding = client.get("/api/models/minilm").json()
    assert embedding["languages"] is None


def test_blank_page_has_no_lines(client: httpx.Client) -> None:
    blank = Image.fromarray(np.full((120, 200, 3), 255, np.uint8))
    body = ocr(client, blank, model="tesseract")
    assert body["text"] == "" and body["lines"] == []
