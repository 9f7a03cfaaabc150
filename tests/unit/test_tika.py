"""Tika's answers without a server: Accept negotiation, the XHTML, the file name header."""

from __future__ import annotations

import lxml.etree
import pytest
from starlette.requests import Request

from frontend.compat.tika import filename, preferred, typed_by_name, xhtml

OFFERED = ("text/plain", "text/html", "text/xml", "application/xml", "application/json")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/plain"),
        ("application/json", "application/json"),
        ("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "text/html"),
        ("application/json;q=0.5, text/plain", "text/plain"),
        ("text/*;q=0.3, application/json;q=0.2", "text/plain"),
        ("text/*, text/plain;q=0", "text/html"),
        ("image/png", "text/plain"),  # nothing offered is asked for: the default
        ("application/json;q=abc", "text/plain"),
    ],
)
def test_accept_picks_the_best_offered_type(accept: str | None, chosen: str) -> None:
    assert preferred(accept, OFFERED) == chosen


def test_xhtml_is_well_formed_with_a_div_per_page() -> None:
    metadata = {"Content-Type": "application/pdf", "resourceName": 'a <"b">.pdf', "n": ["x"]}
    text = "Page one & more\nsecond line\f\x07Page <two>\n\nnext paragraph"
    tree = lxml.etree.fromstring(xhtml(text, metadata, paged=True).encode())
    ns = {"x": "http://www.w3.org/1999/xhtml"}
    pages = tree.findall(".//x:body/x:div[@class='page']", ns)
    assert [[p.text for p in page] for page in pages] == [
        ["Page one & more\nsecond line"],
        ["Page <two>", "next paragraph"],
    ]
    metas = {m.get("name"): m.get("content") for m in tree.findall(".//x:meta", ns)}
    assert metas == {"Content-Type": "application/pdf", "resourceName": 'a <"b">.pdf'}
    assert tree.findtext(".//x:title", namespaces=ns) == 'a <"b">.pdf'
    flat = lxml.etree.fromstring(xhtml("one\n\ntwo", {}, paged=False).encode())
    assert [p.text for p in flat.findall(".//x:body/x:p", ns)] == ["one", "two"]


def request(*headers: tuple[str, str]) -> Request:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return Request({"type": "http", "method": "PUT", "path": "/rmeta", "headers": raw})


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        ('attachment; filename="report 1.pdf"', "report 1.pdf"),
        ("attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf", "Rechnung März.pdf"),
        ("attachment; filename=b'notes.html'", "notes.html"),  # tika-python without rfc6266
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\docs\\\\a.txt"', "a.txt"),
        ("attachment", None),
        ("", None),
    ],
)
def test_file_name_from_content_disposition(disposition: str, name: str | None) -> None:
    assert filename(request(("content-disposition", disposition))) == name


def test_an_untyped_request_is_typed_by_its_file_name() -> None:
    untyped = typed_by_name(request(), "notes.md")
    assert untyped.headers["content-type"] == "text/markdown"
    declared = request(("content-type", "text/plain"))
    assert typed_by_name(declared, "notes.html") is declared
    assert typed_by_name(request(), "no-extension").headers.get("content-type") is None
