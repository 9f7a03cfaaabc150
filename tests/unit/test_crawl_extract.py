"""Text extraction keeps figure captions and meaningful alt text, once, and nothing else."""

from __future__ import annotations

import pytest

from frontend.crawl.extract import _meaningful, extract, extract_cleaned

BODY = "".join(
    f"<p>Paragraph {i} of the article about the herons of the mill pond, long enough to count "
    "as body text for the extractor.</p>"
    for i in range(6)
)


def page(inside: str) -> str:
    return (
        '<html><body><nav><a href="/">Home</a><img src="/l.png" alt="Gazette masthead">'
        f"</nav><main><article><h1>Herons</h1>{BODY}{inside}</article></main>"
        "<footer>All rights reserved</footer></body></html>"
    )


@pytest.mark.parametrize(
    "alt",
    ["A heron in the reeds", "Map of the closed footpath", "Chart: nests 1952-2026"],
)
def test_descriptive_alt_text_is_meaningful(alt: str) -> None:
    assert _meaningful(alt)


@pytest.mark.parametrize(
    "alt",
    ["", "  ", "IMG_1234.jpg", "photo.PNG", "DSC_0042", "image", "Image 3", "photo-12", "logo",
     "12345", "--"],
)  # fmt: skip
def test_empty_file_name_and_placeholder_alts_are_not(alt: str) -> None:
    assert not _meaningful(alt)


def test_captions_and_alt_text_are_kept_once_and_boilerplate_is_not() -> None:
    html = page(
        '<figure><img src="/a.jpg" alt="The heron at dawn"><figcaption>The heron at dawn'
        "</figcaption></figure>"
        '<figure><img src="/b.jpg" alt="IMG_0001.jpg"><figcaption>Figure 2: the weir'
        "</figcaption></figure>"
        '<p>See <img src="/m.png" alt="the footpath map"> below.</p>'
        '<img src="/d.png" alt="Decorative swirl" role="presentation">'
    )
    result = extract(html, "http://example.test/", "", True, 200, 1_000_000)
    assert result.source == "article" and not result.truncated
    for output in (result.text, result.markdown or ""):
        assert output.count("The heron at dawn") == 1  # alt == caption: once
        assert "Figure 2: the weir" in output
        assert "See the footpath map below." in output
        for left_out in ("IMG_0001", "Decorative swirl", "Gazette masthead", "All rights"):
            assert left_out not in output


def test_cleaned_html_text_has_the_alt_text_too() -> None:
    html = '<div><p>Intro.</p><img src="/c.png" alt="Chart of nest counts"></div>'
    assert extract_cleaned(html, False, 1000).text == "Intro.\nChart of nest counts"


def test_the_ceiling_cuts_and_says_so() -> None:
    result = extract(page(""), "http://example.test/", "", True, 200, 100)
    assert result.truncated and len(result.text) == 100 and len(result.markdown or "") <= 100
