"""Apache Tika's clients against the real service: tika-python's parser (PUT /rmeta/text, no
Content-Type, the file name in Content-Disposition), Haystack's TikaDocumentConverter (PUT
/rmeta/xml under its documented URL ending in /tika, pages from the XHTML's page divs), and
/tika's Accept, all answered from /api/ocr's pipeline on the session's Triton."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import lxml.etree
import pytest

from tests.images import encode, render_text
from tests.integration.conftest import RunningApi
from tests.integration.test_embed_errors import assert_envelope
from tests.pdfs import text_pdf

PAGES = [["Invoice 1042 alpha", "Total 12.50"], ["Second page bravo", "Paid in full"]]
HTML = (
    "<html><head><title>Notes</title><script>var secret = 1;</script></head>"
    "<body><p>First golf</p><p>Second hotel</p></body></html>"
)
XHTML_NS = {"x": "http://www.w3.org/1999/xhtml"}


@pytest.fixture
def tika_parser(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tika-python as a client only: it never downloads or starts a Tika server of its own."""
    from tika import parser, tika

    monkeypatch.setattr(tika, "TikaClientOnly", True)
    return parser


def ocr_pages(client: httpx.Client, data: bytes) -> list[str]:
    import base64

    response = client.post("/api/ocr", json={"image": base64.b64encode(data).decode()})
    assert response.status_code == 200, response.text
    return [page["text"] for page in response.json()["pages"]]


def test_tika_python_from_file_reads_a_pdf(
    tika_parser: Any, api: RunningApi, client: httpx.Client, tmp_path: Path
) -> None:
    pdf = text_pdf(PAGES)
    path = tmp_path / "invoice-1042.pdf"
    path.write_bytes(pdf)
    parsed = tika_parser.from_file(str(path), serverEndpoint=api.url)
    assert parsed["status"] == 200
    assert parsed["content"] == "\f".join(ocr_pages(client, pdf))
    metadata = parsed["metadata"]
    assert metadata["Content-Type"] == "application/pdf"
    assert metadata["resourceName"] == "invoice-1042.pdf"
    assert metadata["xmpTPg:NPages"] == "2"
    assert metadata["Content-Length"] == str(len(pdf))
    assert metadata["X-TIKA:content_handler"] == "ToTextContentHandler"


def test_tika_python_types_an_untyped_file_by_its_name(
    tika_parser: Any, api: RunningApi, tmp_path: Path
) -> None:
    """tika-python sends no Content-Type: an .html file is still read as HTML."""
    path = tmp_path / "notes.html"
    path.write_text(HTML)
    parsed = tika_parser.from_file(str(path), serverEndpoint=api.url)
    assert parsed["status"] == 200
    assert "First golf" in parsed["content"] and "Second hotel" in parsed["content"]
    assert "secret" not in parsed["content"] and "<p>" not in parsed["content"]
    assert parsed["metadata"]["Content-Type"] == "text/html"


def test_tika_python_from_buffer_reads_text_and_images(tika_parser: Any, api: RunningApi) -> None:
    text = tika_parser.from_buffer("plain words, Ünïcödé", serverEndpoint=api.url)
    assert text["status"] == 200
    assert text["content"] == "plain words, Ünïcödé"
    assert "resourceName" not in text["metadata"]
    image = tika_parser.from_buffer(encode(render_text(["HELLO HOMELAB"])), serverEndpoint=api.url)
    assert "HELLO" in image["content"].upper()


def test_tika_python_xml_content_is_xhtml_with_page_divs(
    tika_parser: Any, api: RunningApi, tmp_path: Path
) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(text_pdf(PAGES))
    parsed = tika_parser.from_file(str(path), serverEndpoint=api.url, xmlContent=True)
    assert parsed["status"] == 200
    tree = lxml.etree.fromstring(parsed["content"].encode())
    pages = tree.findall(".//x:body/x:div[@class='page']", XHTML_NS)
    assert ["\n".join(p.itertext()).strip() for p in pages] == ["\n".join(p) for p in PAGES]
    names = {meta.get("name") for meta in tree.findall(".//x:head/x:meta", XHTML_NS)}
    assert {"Content-Type", "resourceName", "xmpTPg:NPages"} <= names
    assert parsed["metadata"]["X-TIKA:content_handler"] == "ToXMLContentHandler"


@pytest.mark.parametrize("suffix", ["/tika", ""], ids=["documented /tika URL", "server root"])
def test_haystack_tika_converter_splits_pdf_pages(
    api: RunningApi, client: httpx.Client, tmp_path: Path, suffix: str
) -> None:
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    from haystack.dataclasses import ByteStream
    from haystack_integrations.components.converters.tika import TikaDocumentConverter

    pdf = text_pdf(PAGES)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    converter = TikaDocumentConverter(tika_url=api.url + suffix)
    documents = converter.run(sources=[path, ByteStream(pdf)])["documents"]
    assert len(documents) == 2
    expected = [page.strip() for page in ocr_pages(client, pdf)]
    for document in documents:
        assert document.content is not None
        assert [page.strip() for page in document.content.split("\f")] == expected
    assert documents[0].meta["file_path"] == "invoice.pdf"


def test_tika_honours_accept(client: httpx.Client) -> None:
    pdf = text_pdf(PAGES)
    typed = {"Content-Type": "application/pdf"}

    def put(accept: str | None) -> httpx.Response:
        headers = typed if accept is None else {**typed, "Accept": accept}
        response = client.put("/tika", content=pdf, headers=headers)
        assert response.status_code == 200, response.text
        return response

    plain = put(None)
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert "Invoice 1042 alpha" in plain.text and "<" not in plain.text
    assert put("*/*").text == put("application/json;q=0.5, text/plain").text == plain.text
    html = put("text/html")
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.startswith('<html xmlns="http://www.w3.org/1999/xhtml">')
    assert "Invoice 1042 alpha" in html.text
    as_json = put("application/json").json()
    assert as_json["Content-Type"] == "application/pdf" and as_json["xmpTPg:NPages"] == "2"
    assert lxml.etree.fromstring(as_json["X-TIKA:content"].encode()) is not None
    assert put("text/xml").headers["content-type"].startswith("text/xml")


def test_rmeta_handlers_and_errors(client: httpx.Client) -> None:
    pdf = text_pdf(PAGES[:1])
    headers = {
        "Content-Type": "application/pdf",
        "Content-Disposition": 'attachment; filename="a b.pdf"',
    }
    ignored = client.put("/rmeta/ignore", content=pdf, headers=headers)
    assert ignored.status_code == 200, ignored.text
    [metadata] = ignored.json()
    assert "X-TIKA:content" not in metadata and metadata["resourceName"] == "a b.pdf"
    [default] = client.put("/rmeta", content=pdf, headers=headers).json()
    assert (
        default["X-TIKA:content"].startswith("<html")
        and "Invoice 1042 alpha" in default["X-TIKA:content"]
    )
    [html] = client.put("/rmeta/html", content=pdf, headers=headers).json()
    assert html["X-TIKA:content_handler"] == "ToHTMLContentHandler"
    assert_envelope(client.put("/rmeta/text", content=b""), 400, "INVALID_REQUEST")
    unreadable = bytes(range(256)) * 4
    assert_envelope(client.put("/tika/rmeta/xml", content=unreadable), 400, "INVALID_REQUEST")
    assert client.put("/rmeta/nonsense", content=pdf).status_code == 404
