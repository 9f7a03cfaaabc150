"""POST /api/ocr with documents on a real Triton: PDF text layers, scanned PDFs, TIFF pages."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
import tritonclient.http as triton_http
from PIL import Image

from frontend.triton.embedded import EmbeddedTriton
from tests.images import b64, encode, render_text
from tests.integration.conftest import RunningApi, concurrent_posts
from tests.integration.test_embed_errors import assert_envelope
from tests.pdfs import image_pdf, multipage_tiff, text_pdf

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
]
# Ten born-digital pages: two lines of real text each.
BORN_DIGITAL = [[f"Page {n} {word}", f"Total {n}.50"] for n, word in enumerate(WORDS, start=1)]


def post_document(client: httpx.Client, data: bytes, **options: Any) -> dict[str, Any]:
    response = client.post("/api/ocr", json={"image": b64(data), **options})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {
        "request_id",
        "text",
        "pages",
        "page_count",
        "model_used",
        "processing_time_ms",
    }
    return body


def tiff_with_a_bad_second_page() -> bytes:
    data = bytearray(multipage_tiff([render_text(["x"], size=(100, 60))] * 3))
    with Image.open(io.BytesIO(bytes(data))) as image:
        image.seek(1)
        start = image.tag_v2[273][0]  # StripOffsets: where the second page's pixels begin
    data[start : start + 140] = b"\xff" * 140
    return bytes(data)


def ocr_requests(triton: EmbeddedTriton) -> int:
    """Inference requests the OCR model has answered (0 before it is first loaded)."""
    admin = triton_http.InferenceServerClient(triton.http_url)
    try:
        stats = admin.get_inference_statistics("rapidocr")["model_stats"]
    except Exception:  # not loaded yet
        return 0
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats)


def test_born_digital_pdf_is_read_from_its_text_layer_without_ocr(
    client: httpx.Client, triton: EmbeddedTriton
) -> None:
    before = ocr_requests(triton)
    body = post_document(client, text_pdf(BORN_DIGITAL))
    assert ocr_requests(triton) == before  # no page went to the OCR model
    assert body["processing_time_ms"] < 1000
    assert body["page_count"] == 10
    assert [page["page"] for page in body["pages"]] == list(range(1, 11))
    for page, lines in zip(body["pages"], BORN_DIGITAL, strict=True):
        assert page["source"] == "text-layer"
        assert page["text"] == "\n".join(lines)
        assert [line["text"] for line in page["lines"]] == lines
        assert {line["confidence"] for line in page["lines"]} == {1.0}
        # letter size at the default 200 DPI
        assert (page["width"], page["height"], page["dpi"]) == (1700, 2200, 200)
        for line in page["lines"]:
            assert all(0 <= x <= 1700 and 0 <= y <= 2200 for x, y in line["box"])
    assert body["text"] == "\f".join("\n".join(lines) for lines in BORN_DIGITAL)
    assert body["model_used"] == "rapidocr"


def test_scanned_pdf_pages_are_read_by_ocr(client: httpx.Client) -> None:
    scans = [
        render_text([f"Page {n} {word}"], size=(420, 80), font_size=36)
        for n, word in enumerate(WORDS, start=1)
    ]
    # 72 pixels per inch in the PDF and dpi=72: the pages render back at their own size
    body = post_document(client, image_pdf(scans), dpi=72)
    # (word spacing at this small size is the model's business: compare without spaces)
    assert [page["text"].replace(" ", "") for page in body["pages"]] == [
        f"Page{n}{word}" for n, word in enumerate(WORDS, start=1)
    ]
    assert {page["source"] for page in body["pages"]} == {"ocr"}
    assert {(page["width"], page["height"]) for page in body["pages"]} == {(420, 80)}


def test_page_ranges_force_ocr_and_page_images(client: httpx.Client) -> None:
    document = text_pdf(BORN_DIGITAL, size=(360, 150), font_size=20)
    body = post_document(client, document, pages="2-3,10", dpi=144)
    assert [page["page"] for page in body["pages"]] == [2, 3, 10]
    assert body["page_count"] == 10
    forced = post_document(client, document, pages="2", dpi=144, force_ocr=True, page_images=True)
    (page,) = forced["pages"]
    assert page["source"] == "ocr"
    assert page["text"] == "Page 2 bravo\nTotal 2.50"
    assert page["image"].startswith("data:image/png;base64,")
    png = base64.b64decode(page["image"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (page["width"], page["height"]) == (720, 300)


def test_multipart_pdf_and_multipage_tiff(client: httpx.Client) -> None:
    files = {"image": ("doc.pdf", text_pdf(BORN_DIGITAL[:2]), "application/pdf")}
    response = client.post("/api/ocr", files=files, data={"pages": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "Page 2 bravo\nTotal 2.50"
    texts = ["CASH 20.00", "TOTAL 12.50", "Hello Triton 2026"]
    body = post_document(client, multipage_tiff([render_text([text]) for text in texts]))
    assert [page["text"] for page in body["pages"]] == texts
    assert {(page["source"], page["dpi"], page["width"]) for page in body["pages"]} == {
        ("ocr", None, 640)
    }
    assert body["text"] == "\f".join(texts)


def test_a_single_page_tiff_keeps_the_image_shape(client: httpx.Client) -> None:
    data = encode(render_text(["Hello Triton 2026"]), "TIFF")
    response = client.post("/api/ocr", json={"image": b64(data)})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {
        "request_id",
        "text",
        "lines",
        "model_used",
        "processing_time_ms",
    }


def test_large_pages_are_rendered_within_the_pixel_limits(client: httpx.Client) -> None:
    poster = text_pdf([["Poster"]], size=(5000, 5000))  # 69 inches square
    (page,) = post_document(client, poster)["pages"]  # (OCR of a 12 MP page: ~30 s here)
    # fixtures: max_image_pixels 12 M, max_image_side 8000
    assert page["width"] * page["height"] <= 12_000_000
    assert page["dpi"] < 200
    assert page["text"] == "Poster"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"image": b64(text_pdf([["x"]])[:150])}, "corrupt or truncated"),
        ({"image": b64(b"%PDF-1.7\n" + bytes(range(256)) * 4)}, "corrupt or truncated"),
        ({"image": b64(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF")}, "corrupt or truncated"),
        ({"image": b64(text_pdf([["x"]], encrypted=True))}, "password-protected"),
        ({"image": b64(b"not really", "application/pdf")}, "corrupt or truncated"),
        ({"image": b64(text_pdf([["x"]] * 13))}, "the limit is 12"),
        ({"image": b64(text_pdf([["x"]] * 3)), "pages": "2-5"}, "pages: page 5 is past"),
        ({"image": b64(text_pdf([["x"]])), "pages": "one"}, "pages: 'one' is not"),
        ({"image": b64(text_pdf([["x"]])), "dpi": 700}, "dpi: must be at most 600"),
        ({"image": b64(text_pdf([["x"]])), "dpi": 10}, "dpi"),
        (
            {"batch": [b64(encode(render_text(["x"]))), b64(text_pdf([["x"]]))]},
            "image 1: a document",
        ),
        ({"image": b64(tiff_with_a_bad_second_page())}, "page 2: is truncated or corrupt"),
    ],
    ids=[
        "truncated",
        "garbage after header",
        "no pages",
        "encrypted",
        "declared PDF",
        "over the page limit",
        "page past the end",
        "bad pages",
        "dpi over the cap",
        "dpi too low",
        "PDF in a batch",
        "truncated TIFF",
    ],
)
def test_bad_documents_get_the_envelope(
    client: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    error = assert_envelope(client.post("/api/ocr", json=body), 400, "INVALID_REQUEST")
    assert fragment in error["message"]


def test_concurrent_documents_share_pdfium_safely(api: RunningApi) -> None:
    # PDFium is not thread-safe: requests rendering and reading at once must not mix up pages
    scans = image_pdf([render_text([f"Scan {n}"], size=(300, 80)) for n in range(1, 4)])
    bodies = [
        {"image": b64(text_pdf(BORN_DIGITAL)), "page_images": True, "dpi": 36},
        {"image": b64(scans), "dpi": 72},
    ] * 3
    responses = concurrent_posts(api, bodies, "/api/ocr")
    for response, body in zip(responses, bodies, strict=True):
        assert response.status_code == 200, response.text
        pages = response.json()["pages"]
        if "page_images" in body:
            assert [p["text"] for p in pages] == ["\n".join(lines) for lines in BORN_DIGITAL]
            assert all(p["image"].startswith("data:image/png;base64,") for p in pages)
        else:
            assert [p["text"] for p in pages] == ["Scan 1", "Scan 2", "Scan 3"]


def test_page_limit_applies_to_the_chosen_pages(client: httpx.Client) -> None:
    body = post_document(client, text_pdf([["x"]] * 13), pages="1-12")
    assert len(body["pages"]) == 12 and body["page_count"] == 13


def test_caption_refuses_pdfs_clearly(client: httpx.Client) -> None:
    response = client.post("/api/caption", json={"image": b64(text_pdf([["x"]]))})
    error = assert_envelope(response, 400, "INVALID_REQUEST")
    assert "/api/ocr" in error["message"]


def test_a_scanned_pdf_in_german_goes_to_the_engine_that_reads_it(client: httpx.Client) -> None:
    german = render_text(["Grüße aus Köln", "Äpfel und Öl"], size=(640, 200))
    body = post_document(client, image_pdf([german]), dpi=72, lang="deu")
    assert body["model_used"] == "tesseract"
    assert body["pages"][0]["text"] == "Grüße aus Köln\nÄpfel und Öl"
