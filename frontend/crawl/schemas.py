"""Request and response shapes of POST /api/crawl."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

# Headers a request may not set: the browser and the proxy own them.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "cookie",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$")
BlockableResource = Literal["image", "media", "font", "stylesheet"]


class PageOptions(BaseModel):
    """How one page is loaded and what is returned of it (POST /api/crawl, and each page of a
    site crawl)."""

    model_config = ConfigDict(extra="forbid")

    screenshot: StrictBool = Field(
        default=False, description="Return a PNG screenshot as `screenshot_base64`."
    )
    full_page: StrictBool = Field(
        default=False,
        description="With `screenshot`: the whole page (up to `crawl.max_screenshot_height` "
        "pixels) instead of the viewport.",
    )
    pdf: StrictBool = Field(
        default=False, description="Also return the page printed to PDF as `pdf_base64`."
    )
    wait_for_js: StrictBool = Field(
        default=True,
        description="After the load event, wait until the page's scripts are done: no request "
        "for a document, script or fetch/XHR in flight, no timer of up to 1.5 s pending and no "
        "DOM change for a short moment (at most `crawl.js_wait_ms`), so text that scripts "
        "insert is included. A page where nothing happens after load costs almost nothing.",
    )
    wait_for_selector: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="A CSS selector to wait for after the load (within the timeout; if it never "
        "appears the page is returned with `partial: true`).",
    )
    wait_ms: StrictInt | None = Field(
        default=None,
        ge=0,
        le=60_000,
        description="Wait this long after the load (and the selector), within the timeout.",
    )
    timeout_ms: StrictInt | None = Field(
        default=None,
        ge=100,
        description="Time allowed for loading the page, up to `crawl.max_timeout_ms` "
        "(default `crawl.default_timeout_ms`). A page still loading then is returned as far "
        "as it rendered, with `partial: true`.",
    )
    markdown: StrictBool = Field(default=False, description="Also return the text as `markdown`.")
    html: StrictBool = Field(
        default=False,
        description="Also return the rendered HTML as `html` (up to `crawl.max_html_chars`).",
    )
    links: StrictBool = Field(
        default=False, description="Also return the page's http(s) `links` (up to crawl.max_links)."
    )
    only_main_content: StrictBool = Field(
        default=True,
        description="Text and markdown of the main content only (navigation, headers, footers, "
        "asides and comments dropped). false: of the whole page.",
    )
    include_tags: list[StrictStr] | None = Field(
        default=None,
        max_length=50,
        description="CSS selectors: text and markdown of just these elements.",
    )
    exclude_tags: list[StrictStr] | None = Field(
        default=None,
        max_length=50,
        description="CSS selectors: elements left out of the text and markdown.",
    )
    headers: dict[StrictStr, StrictStr] | None = Field(
        default=None,
        max_length=50,
        description="Extra request headers sent with every request of the page (not `Host`, "
        "`Cookie` or hop-by-hop headers; use `cookies` for cookies).",
    )
    cookies: dict[StrictStr, StrictStr] | None = Field(
        default=None,
        max_length=50,
        description="Cookies (name: value) set for the URL's host before the page loads.",
    )
    user_agent: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The User-Agent for this page (default `crawl.user_agent`).",
    )
    mobile: StrictBool = Field(
        default=False,
        description="Load as a phone: a 390x844 touch viewport and a mobile User-Agent "
        "(unless `user_agent` is given).",
    )
    block_resources: list[BlockableResource] | None = Field(
        default=None,
        max_length=4,
        description="Resource types not downloaded (image, media, font, stylesheet): faster "
        "pages when no screenshot or PDF is wanted. Not allowed with `screenshot` or `pdf`.",
    )

    @field_validator("include_tags", "exclude_tags")
    @classmethod
    def _check_selectors(cls, value: list[str] | None) -> list[str] | None:
        for selector in value or ():
            if not selector.strip() or len(selector) > 1000:
                raise ValueError("a selector must be 1..1000 characters")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, content in (value or {}).items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"'{name[:100]}' is not a valid header name")
            if name.lower() in FORBIDDEN_HEADERS or name.lower().startswith("proxy-"):
                raise ValueError(f"the header '{name}' cannot be set")
            if len(content) > 8192 or any(c in content for c in "\r\n\0"):
                raise ValueError(f"the value of header '{name}' is invalid")
        return value

    @field_validator("cookies")
    @classmethod
    def _check_cookies(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, content in (value or {}).items():
            if not _COOKIE_NAME.fullmatch(name):
                raise ValueError(f"'{name[:100]}' is not a valid cookie name")
            if len(content) > 4096 or any(c in content for c in ";\r\n\0"):
                raise ValueError(f"the value of cookie '{name}' is invalid")
        return value

    def selectors(self) -> list[str]:
        found = [*(self.include_tags or ()), *(self.exclude_tags or ())]
        if self.wait_for_selector:
            found.append(self.wait_for_selector)
        return found

    def cleans(self) -> bool:
        """Whether text and markdown come from the cleaned HTML (not the main-text extractor)."""
        return bool(not self.only_main_content or self.include_tags or self.exclude_tags)


class CrawlRequest(PageOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://example.com", "screenshot": False, "wait_for_js": True}]
        },
    )

    url: StrictStr = Field(
        min_length=1,
        max_length=4096,
        description="http or https URL. Targets on loopback, private, link-local, multicast or "
        "reserved addresses are refused unless `crawl.allow_private_networks` or "
        "`crawl.allowed_hosts` opens them (redirect hops and subresources included).",
    )


class Redirect(BaseModel):
    url: str = Field(description="A document the browser left for the next one")
    status_code: int = Field(description="Its HTTP status (3xx for redirects, 200 for a refresh)")


class Link(BaseModel):
    url: str
    text: str


class PageMetadata(BaseModel):
    description: str | None = Field(description="<meta name=description> or og:description")
    language: str | None = Field(description="The document's lang attribute")


class CrawlResponse(BaseModel):
    request_id: str
    url: str = Field(description="The final URL, after redirects and refreshes")
    status_code: int = Field(description="HTTP status of the final document")
    redirects: list[Redirect] = Field(description="Documents before the final one, in order")
    title: str
    text: str = Field(
        description="Main text (boilerplate removed; figure captions and meaningful image alt "
        "text kept), else the page's innerText. The whole page up to `crawl.max_text_chars` "
        "(a ceiling against absurd pages)"
    )
    text_source: str = Field(
        description="`article` (trafilatura), `inner_text` (fallback) or `cleaned_html` "
        "(only_main_content false, include_tags, exclude_tags)"
    )
    markdown: str | None = Field(default=None, description="Only when requested")
    links: list[Link] | None = Field(default=None, description="Only when requested")
    metadata: PageMetadata
    html: str | None = Field(default=None, description="Rendered HTML, only when requested")
    cleaned_html: str | None = Field(
        default=None,
        description="With `html`: the HTML text and markdown come from (scripts and styles "
        "removed; only_main_content, include_tags and exclude_tags applied)",
    )
    screenshot_base64: str | None = Field(default=None, description="PNG, only when requested")
    pdf_base64: str | None = Field(default=None, description="PDF, only when requested")
    partial: bool = Field(description="The page had not finished loading when time was up")
    truncated: bool = Field(
        description="HTML, text or transfer hit a crawl.max_* ceiling (set against absurd "
        "pages: a normal long page comes back whole)"
    )
    blocked_requests: int = Field(description="Requests the address policy refused")
    fetch_time_ms: float
