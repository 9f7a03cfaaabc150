"""Clean text, markdown and metadata from a rendered page (pure functions, run in a thread)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
import trafilatura
from markdownify import markdownify

_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t\u00a0]+")


@dataclass(frozen=True)
class Extracted:
    text: str
    markdown: str | None
    source: str  # "article" (trafilatura) or "inner_text" (the fallback)
    truncated: bool


def normalize_text(text: str) -> str:
    """innerText with runs of spaces and blank lines collapsed."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


def extract(
    html: str,
    url: str,
    inner_text: str,
    want_markdown: bool,
    min_chars: int,
    max_chars: int,
) -> Extracted:
    """trafilatura's main text (navigation, ads and comments dropped); the page's innerText
    when that comes back with less than `min_chars` and the page has more."""
    fallback = normalize_text(inner_text)
    main = ""
    if html:
        main = trafilatura.extract(html, url=url, include_comments=False, include_tables=True) or ""
    use_main = len(main) >= min(min_chars, len(fallback)) and bool(main)
    text, cut_text = _cut(main if use_main else fallback, max_chars)
    markdown = None
    cut_markdown = False
    if want_markdown:
        converted = ""
        if use_main:
            converted = (
                trafilatura.extract(
                    html,
                    url=url,
                    output_format="markdown",
                    include_comments=False,
                    include_tables=True,
                    include_formatting=True,
                    include_links=True,
                )
                or ""
            )
        markdown, cut_markdown = _cut(converted or text, max_chars)
    return Extracted(
        text, markdown, "article" if use_main else "inner_text", cut_text or cut_markdown
    )


def extract_cleaned(html: str, want_markdown: bool, max_chars: int) -> Extracted:
    """Text (and markdown) of HTML the page already narrowed (include/exclude selectors, or
    the whole page without scripts): converted as it is, no main-text guessing."""
    text = ""
    if html.strip():
        try:
            text = normalize_text(lxml.html.fromstring(html).text_content())
        except (ValueError, lxml.etree.ParserError):
            text = ""
    text, cut_text = _cut(text, max_chars)
    markdown = None
    cut_markdown = False
    if want_markdown:
        converted = markdownify(html, heading_style="ATX") if html.strip() else ""
        markdown, cut_markdown = _cut(_BLANK_LINES.sub("\n\n", converted).strip(), max_chars)
    return Extracted(text, markdown, "cleaned_html", cut_text or cut_markdown)
