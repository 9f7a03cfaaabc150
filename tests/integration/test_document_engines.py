"""Open WebUI's content extraction engines against the real service: its Tika loader's
PUT /tika/text and its External loader's PUT /process, sent as Open WebUI sends them (the file
as the body, its media type as Content-Type, a quoted X-Filename), answered from /api/ocr's
pipeline on the session's Triton."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote

import httpx
import pytest

from tests.images import b64, encode, render_text
from tests.integration.test_embed_errors import assert_envelope
from tests.pdfs import text_pdf

PAGES = [["Invoice 1042 alpha", "Total 12.50"], ["Second page bravo", "Paid in full"]]


def ocr_text(client: httpx.Client, data: bytes) -> str:
    response = client.post("/api/ocr", json={"image": b64(data)})
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_tika_text_reads_a_pdf_as_api_ocr_does(client: httpx.Client) -> None:
    pdf = text_pdf(PAGES)
    response = client.put("/tika/text", content=pdf, headers={"Content-Type": "application/pdf"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["X-TIKA:content"] == ocr_text(client, pdf)
    text = body["X-TIKA:content"]
    assert "Invoice 1042 alpha" in text and "Paid in full" in text
    assert body["Content-Type"] == "application/pdf" and body["xmpTPg:NPages"] == "2"
    plain = client.put("/tika", content=pdf, headers={"Content-Type": "application/pdf"})
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text == body["X-TIKA:content"]


def test_tika_text_reads_an_image_without_a_declared_type(client: httpx.Client) -> None:
    png = encode(render_text(["HELLO HOMELAB"]))
    response = client.put("/tika/text", content=png)
    assert response.status_code == 200, response.text
    assert response.json()["X-TIKA:content"] == ocr_text(client, png)
    assert "HELLO" in response.json()["X-TIKA:content"].upper()


def test_external_loader_process(client: httpx.Client) -> None:
    pdf = text_pdf(PAGES[:1])
    headers = {"Content-Type": "application/pdf", "X-Filename": quote("Rechnung März.pdf")}
    response = client.put("/process", content=pdf, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["page_content"] == ocr_text(client, pdf)
    assert body["metadata"]["source"] == "Rechnung März.pdf"
    assert body["metadata"]["pages"] == 1 and body["metadata"]["content_type"] == "application/pdf"


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/markdown", "# Notes\n\nÜber das Homelab: 日本語\n".encode()),
        ("application/json", b'{"a": [1, 2]}'),
        ("application/octet-stream", b"plain words in a file without a type\n"),
        (None, "\ufeffwith a byte order mark".encode("utf-8")),
    ],
)
def test_text_files_come_back_as_they_are(
    client: httpx.Client, content_type: str | None, data: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.put("/process", content=data, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["page_content"] == data.decode("utf-8-sig")
    tika = client.put("/tika/text", content=data, headers=headers)
    assert tika.json()["X-TIKA:content"] == data.decode("utf-8-sig")


def test_text_in_another_encoding_is_read_when_declared_as_text(client: httpx.Client) -> None:
    text = "Crème brûlée à la française, größer als déjà vu; naïve café society.\n"
    declared = {"Content-Type": "text/plain; charset=iso-8859-15"}
    response = client.put("/process", content=text.encode("iso-8859-15"), headers=declared)
    assert response.json()["page_content"] == text
    # No charset and not UTF-8: Windows-1252, as legacy .txt and .csv files mostly are
    legacy = {"Content-Type": "text/csv"}
    assert client.put("/tika", content=text.encode("cp1252"), headers=legacy).text == text


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("path", "data", "headers"),
    [
        ("/process", b"", {"Content-Type": "application/pdf"}),
        ("/process", b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, {"Content-Type": DOCX}),
        ("/tika/text", bytes(range(256)) * 8, {"Content-Type": "application/octet-stream"}),
        ("/tika/text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, {"Content-Type": "image/png"}),
        ("/tika/text", b"%PDF-1.7\n%broken", {"Content-Type": "application/pdf"}),
        ("/tika/text", "caf\xe9 cr\xe8me".encode("latin-1"), {"Content-Type": "application/x-foo"}),
        (
            "/tika/text",
            encode(render_text(["x"])),
            {"Content-Type": "image/png", "X-Tika-OCRLanguage": "klingon"},
        ),
    ],
    ids=["empty", "docx", "binary", "corrupt-png", "broken-pdf", "not-text", "unknown-language"],
)
def test_unreadable_files_get_a_400_in_the_envelope(
    client: httpx.Client, path: str, data: bytes, headers: dict[str, str]
) -> None:
    assert_envelope(client.put(path, content=data, headers=headers), 400, "INVALID_REQUEST")


def office_files() -> dict[str, bytes]:
    """A DOCX (a paragraph, a table, a paragraph), an XLSX (two sheets), a PPTX (two
    slides, one with a table), made by the same libraries the service reads them with."""
    import docx
    import openpyxl
    import pptx
    from pptx.util import Inches

    files: dict[str, bytes] = {}
    document = docx.Document()
    document.add_paragraph("Quarterly report alpha")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([["Item", "Cost"], ["Disk", "42"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph("Signed bravo")
    out = io.BytesIO()
    document.save(out)
    files["docx"] = out.getvalue()

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Costs"
    sheet.append(["Item", "Cost"])
    sheet.append(["Disk", 42])
    workbook.create_sheet("Notes").append(["charlie"])
    out = io.BytesIO()
    workbook.save(out)
    files["xlsx"] = out.getvalue()

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Delta title"
    first.placeholders[1].text = "echo point"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    grid = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([["Item", "Cost"], ["Disk", "42"]]):
        for c, text in enumerate(row):
            grid.cell(r, c).text = text
    out = io.BytesIO()
    deck.save(out)
    files["pptx"] = out.getvalue()
    return files


OFFICE_TEXT = {
    "docx": "Quarterly report alpha\nItem\tCost\nDisk\t42\nSigned bravo",
    "xlsx": "# Costs\nItem\tCost\nDisk\t42\n\n# Notes\ncharlie",
    "pptx": "# Slide 1\nDelta title\necho point\n\n# Slide 2\nItem\tCost\nDisk\t42",
}


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_office_files_are_read_in_order(client: httpx.Client, kind: str) -> None:
    data = office_files()[kind]
    response = client.put("/tika/text", content=data, headers={"Content-Type": "application/x"})
    assert response.status_code == 200, response.text
    assert response.json()["X-TIKA:content"] == OFFICE_TEXT[kind]
    assert response.json()["Content-Type"].startswith("application/vnd.openxmlformats")
    headers = {"X-Filename": quote(f"report.{kind}")}
    processed = client.put("/process", content=data, headers=headers).json()
    assert processed["page_content"] == OFFICE_TEXT[kind]


def test_a_zip_bomb_dressed_as_docx_is_refused_before_unpacking(client: httpx.Client) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (110 * 2**20))  # ~110 KiB packed
    response = client.put("/process", content=out.getvalue())
    error = assert_envelope(response, 400, "INVALID_REQUEST")
    assert "unpack" in error["message"]


def test_a_damaged_docx_is_a_400(client: httpx.Client) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<not-word")
    assert_envelope(client.put("/tika/text", content=out.getvalue()), 400, "INVALID_REQUEST")


def test_an_html_file_gives_its_whole_text_without_scripts(client: httpx.Client) -> None:
    html = (
        "<html><head><title>Notes</title><style>p {color: red}</style></head><body>"
        "<nav>Menu foxtrot</nav><p>First golf</p><script>var secret = 1;</script>"
        "<p>Second hotel</p></body></html>"
    )
    response = client.put("/tika", content=html.encode(), headers={"Content-Type": "text/html"})
    assert response.status_code == 200, response.text
    text = response.text
    assert "Menu foxtrot" in text and "First golf" in text and "Second hotel" in text
    assert "secret" not in text and "color" not in text and "<p>" not in text
