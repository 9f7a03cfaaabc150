"""Documents for OCR: page ranges, PDF geometry and text layers, TIFF frames, what is one."""

from __future__ import annotations

import pytest
from PIL import Image

from frontend.core.errors import APIError
from frontend.images import pdf
from frontend.images.decode import ImageLimits
from frontend.images.document import (
    DocumentKind,
    check_page_limit,
    find_document,
    parse_pages,
    tiff_frames,
)
from tests.images import encode, render_text
from tests.pdfs import image_pdf, multipage_tiff, text_pdf

LIMITS = ImageLimits(max_pixels=40_000_000, max_side=16_384)


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        (None, 3, [1, 2, 3]),
        ("2", 5, [2]),
        ("1-3,5", 10, [1, 2, 3, 5]),
        ("8-", 10, [8, 9, 10]),
        (" 5 , 1-2 ,2 ", 5, [1, 2, 5]),
        ("3-3", 3, [3]),
    ],
)
def test_page_ranges_are_read(spec: str | None, count: int, expected: list[int]) -> None:
    assert parse_pages(spec, count) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("0", "numbered from 1"),
        ("4-2", "runs backwards"),
        ("11", "page 11 is past the end; the document has 10 pages"),
        ("3-12", "page 12 is past the end"),
        ("12-", "page 12 is past the end"),
        ("a-b", "'a-b' is not a page number"),
        ("1,,2", "'' is not a page number"),
        ("", "write page numbers"),
        ("1-2-3", "is not a page number"),
        ("1" * 201, "at most 200"),
    ],
)
def test_bad_page_ranges_name_the_option(spec: str, fragment: str) -> None:
    with pytest.raises(APIError) as caught:
        parse_pages(spec, 10)
    assert caught.value.status == 400
    assert caught.value.message.startswith("invalid request: pages: ")
    assert fragment in caught.value.message


def test_page_limit_counts_the_chosen_pages() -> None:
    check_page_limit(5, 500, 5)
    with pytest.raises(APIError) as caught:
        check_page_limit(6, 6, 5)
    assert caught.value.details == {"page_count": 6, "selected_pages": 6, "limit": 5}


def test_geometry_follows_the_dpi_and_shrinks_to_fit_the_limits() -> None:
    letter = pdf.geometry(612, 792, 200, 40_000_000, 16_384)
    assert (letter.width, letter.height, letter.dpi) == (1700, 2200, 200)
    # a 200 x 200 inch poster at 200 DPI would be 40000 px a side: scaled down instead
    poster = pdf.geometry(14_400, 14_400, 200, 12_000_000, 8000)
    assert poster.width * poster.height <= 12_000_000
    assert max(poster.width, poster.height) <= 8000
    assert 0 < poster.dpi < 25


def read_layer(data: bytes, number: int = 1, dpi: int = 72) -> tuple[pdf.PageGeometry, list]:
    document = pdf.open_pdf(data)
    try:
        size = pdf.page_geometry(document, number, dpi, 40_000_000, 16_384)
        return size, pdf.text_layer(document, number, size)
    finally:
        pdf.close_pdf(document)


def test_text_layer_lines_have_pixel_boxes_at_the_dpi() -> None:
    data = text_pdf([["Hello world", "Second (line)"]], size=(400, 300), font_size=20)
    size, lines = read_layer(data, dpi=144)
    assert (size.width, size.height) == (800, 600)
    assert [line.text for line in lines] == ["Hello world", "Second (line)"]
    (x0, y0), _, (x1, y1), _ = lines[0].box
    # the text starts 72 pt (144 px) from the left and its baseline is 72 pt below the top
    assert 140 <= x0 <= 150 and 100 <= y0 < y1 <= 150 and x1 > x0 + 150
    assert lines[1].box[0][1] > lines[0].box[2][1]  # the second line lies below the first


def test_text_layer_boxes_follow_the_page_rotation() -> None:
    size, (line,) = read_layer(text_pdf([["Rotated text"]], rotate=90))
    assert (size.width, size.height) == (792, 612)
    (x0, y0), _, (x1, y1), _ = line.box
    assert y1 - y0 > 3 * (x1 - x0)  # horizontal text on a page turned 90 degrees runs down
    assert x1 > 700  # the page's top edge is now on the right


def test_scanned_pages_have_no_text_layer() -> None:
    size, lines = read_layer(image_pdf([render_text(["Hello"])]))
    assert lines == []
    assert (size.width, size.height) == (640, 140)


def test_rendered_pages_are_rgb_at_the_geometry() -> None:
    document = pdf.open_pdf(image_pdf([render_text(["Hello"])]))
    try:
        size = pdf.page_geometry(document, 1, 36, 40_000_000, 16_384)
        image = pdf.render_page(document, 1, size)
    finally:
        pdf.close_pdf(document)
    assert image.shape == (70, 320, 3)
    assert image.min() < 100 < 200 < image.max()  # dark text on white


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (text_pdf([["x"]])[:150], "corrupt or truncated"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "corrupt or truncated"),
        (text_pdf([["x"]], encrypted=True), "password-protected"),
    ],
    ids=["truncated", "garbage", "encrypted"],
)
def test_unreadable_pdfs_are_400(data: bytes, fragment: str) -> None:
    with pytest.raises(APIError) as caught:
        pdf.open_pdf(data)
    assert caught.value.status == 400
    assert fragment in caught.value.message


def test_what_counts_as_a_document() -> None:
    png = encode(render_text(["x"]))
    tiff = multipage_tiff([render_text(["a"]), render_text(["b"])])
    single_tiff = encode(render_text(["a"]), "TIFF")
    assert find_document([png], [None], True, True) is None
    assert find_document([single_tiff], [None], True, True) is None
    assert find_document([tiff], [None], True, True) is DocumentKind.TIFF
    assert find_document([b"%PDF-1.4 ..."], [None], True, True) is DocumentKind.PDF
    assert find_document([b"junk"], ["application/pdf"], True, True) is DocumentKind.PDF
    assert find_document([tiff], [None], True, False) is None  # caption: first frame
    with pytest.raises(APIError, match="image 1: a document"):
        find_document([png, text_pdf([["x"]])], [None, None], False, True)
    with pytest.raises(APIError, match="POST /api/ocr reads PDF"):
        find_document([text_pdf([["x"]])], [None], True, False)


def test_tiff_frames_are_pages() -> None:
    pages = [Image.new("RGB", (30 + n, 20), (n * 40, 0, 0)) for n in range(4)]
    frames = tiff_frames(multipage_tiff(pages), [2, 4], LIMITS)
    assert [frame.shape for frame in frames] == [(20, 31, 3), (20, 33, 3)]
    assert frames[1][0, 0].tolist() == [120, 0, 0]
    with pytest.raises(APIError, match="page 3: has 1200 pixels"):
        tiff_frames(multipage_tiff([Image.new("RGB", (30, 40))] * 3), [3], ImageLimits(1000, 100))
