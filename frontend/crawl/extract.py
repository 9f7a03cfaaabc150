"""Clean text, markdown and metadata from a rendered page (pure functions, run in a thread)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml.html import HtmlElement
from markdownify import markdownify

_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t\u00a0]+")
# alt text that says nothing about the image: a file name, a camera's or a CMS's default name
_FILE_NAME = re.compile(
    r"^[\w\-. ]*\.(jpe?g|png|gif|webp|avif|svg|bmp|tiff?|heic|ico)$"
    r"|^(img|dsc|dscn|dscf|pxl|pict?|image|photo|screenshot|scan)[\s_\-]*\d+[\w\-]*$",
    re.IGNORECASE,
)
_PLACEHOLDERS = frozenset([
    "image", "img", "photo", "picture", "pic", "icon", "logo", "graphic", "thumbnail", "thumb",
    "banner", "placeholder", "spacer", "blank", "untitled", "figure", "null", "undefined",
    "none", "alt", "avatar"
])  # fmt: skip
_BLOCKS = tuple([
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"
])  # fmt: skip
# An image's alt becomes text where the image is: inline, or a paragraph of its own.
_INLINE_PARENTS = frozenset([
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "dd", "dfn", "dt", "em", "figcaption",
    "h1", "h2", "h3", "h4", "h5", "h6", "i", "label", "li", "mark", "p", "q", "s", "small",
    "span", "strong", "sub", "sup", "td", "th", "u", "caption"
])  # fmt: skip


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


def _meaningful(alt: str) -> bool:
    words = re.sub(r"[\s_\-]*\d*$", "", alt).casefold()
    return (
        len(alt) >= 3
        and any(ch.isalpha() for ch in alt)
        and words not in _PLACEHOLDERS
        and not _FILE_NAME.match(alt)
    )


def with_captions(tree: HtmlElement) -> HtmlElement:
    """Figure captions and meaningful image alt text made into text the extractors keep (in
    place): a <figure> becomes a block and its <figcaption> a paragraph; an image whose alt
    says something (not empty, not a file name, not "image") becomes its alt text, unless the
    caption or the text around it already says the same. Decorative images (aria-hidden,
    role=presentation) stay out."""
    for caption in tree.iter("figcaption"):
        caption.tag = "p"
    for figure in tree.iter("figure"):
        figure.tag = "div"  # trafilatura drops <figure> with all it holds
    for image in list(tree.iter("img")):
        alt = _SPACES.sub(" ", image.get("alt") or "").strip()
        parent = image.getparent()
        if (
            parent is None
            or not _meaningful(alt)
            or image.get("aria-hidden") == "true"
            or image.get("role") in ("presentation", "none")
        ):
            continue
        block = (
            parent.getparent() if parent.tag == "a" and parent.getparent() is not None else parent
        )
        if alt.casefold() in block.text_content().casefold():
            continue  # the caption or the link says it already
        if parent.tag in _INLINE_PARENTS:
            text = lxml.html.Element("span")
            text.text = f" {alt} "
        else:
            text = lxml.html.Element("p")
            text.text = alt
        text.tail = image.tail
        parent.replace(image, text)
    return tree


def _tree(html: str) -> HtmlElement | None:
    try:
        return with_captions(lxml.html.fromstring(html))
    except (ValueError, lxml.etree.ParserError):
        return None


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
    # parsed once; trafilatura works on a copy of the tree it is given
    tree = _tree(html) if html.strip() else None
    if tree is not None:
        main = trafilatura.extract(tree, url=url, include_comments=False, include_tables=True) or ""
    use_main = len(main) >= min(min_chars, len(fallback)) and bool(main)
    text, cut_text = _cut(main if use_main else fallback, max_chars)
    markdown = None
    cut_markdown = False
    if want_markdown:
        converted = ""
        if use_main and tree is not None:
            converted = (
                trafilatura.extract(
                    tree,
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


def _block_text(tree: HtmlElement) -> str:
    """The tree's text with a line break after each block (text_content() alone runs the
    paragraphs of a page together)."""
    for element in tree.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    return str(tree.text_content())


def extract_cleaned(html: str, want_markdown: bool, max_chars: int) -> Extracted:
    """Text (and markdown) of HTML the page already narrowed (include/exclude selectors, or
    the whole page without scripts): converted as it is, no main-text guessing."""
    tree = _tree(html) if html.strip() else None
    text = normalize_text(_block_text(tree)) if tree is not None else ""
    text, cut_text = _cut(text, max_chars)
    markdown = None
    cut_markdown = False
    if want_markdown:
        converted = markdownify(html, heading_style="ATX") if html.strip() else ""
        markdown, cut_markdown = _cut(_BLANK_LINES.sub("\n\n", converted).strip(), max_chars)
    return Extracted(text, markdown, "cleaned_html", cut_text or cut_markdown)
