"""Request and response shapes of POST /api/crawl."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class CrawlRequest(BaseModel):
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
    screenshot: StrictBool = Field(
        default=False, description="Return a PNG screenshot as `screenshot_base64`."
    )
    full_page: StrictBool = Field(
        default=False,
        description="With `screenshot`: the whole page (up to `crawl.max_screenshot_height` "
        "pixels) instead of the viewport.",
    )
    wait_for_js: StrictBool = Field(
        default=True,
        description="After the load event, wait for the network to go idle and the DOM to stop "
        "changing (at most `crawl.js_wait_ms`), so text that scripts insert is included.",
    )
    timeout_ms: StrictInt | None = Field(
        default=None,
        ge=100,
        description="Time allowed for loading the page, up to `crawl.max_timeout_ms` "
        "(default `crawl.default_timeout_ms`). A page still loading then is returned as far "
        "as it rendered, with `partial: true`.",
    )
    markdown: StrictBool = Field(default=False, description="Also return the text as `markdown`.")
    links: StrictBool = Field(
        default=False, description="Also return the page's http(s) `links` (up to crawl.max_links)."
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
    text: str = Field(description="Main text (boilerplate removed), else the page's innerText")
    text_source: str = Field(description="`article` (trafilatura) or `inner_text` (fallback)")
    markdown: str | None = Field(default=None, description="Only when requested")
    links: list[Link] | None = Field(default=None, description="Only when requested")
    metadata: PageMetadata
    screenshot_base64: str | None = Field(default=None, description="PNG, only when requested")
    partial: bool = Field(description="The page had not finished loading when time was up")
    truncated: bool = Field(description="HTML, text or transfer hit a crawl.max_* limit")
    blocked_requests: int = Field(description="Requests the address policy refused")
    fetch_time_ms: float
