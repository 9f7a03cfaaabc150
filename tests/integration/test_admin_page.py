"""The admin page in a real Chromium (Playwright) against a frontend over the session's real
Triton: every panel works, nothing is logged as an error, and each panel is photographed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from frontend.app import create_app
from frontend.core.config import SecuritySection, Settings
from frontend.core.security import Security, hash_key
from frontend.models.cache import repo_dir
from frontend.triton.embedded import EmbeddedTriton
from tests.crawl.site import Listener, Site
from tests.fake_hub import FakeHub
from tests.images import encode, render_text
from tests.integration.admin_browser import AdminPage, launch, new_admin_page, screenshot_dir
from tests.integration.conftest import HUB_CAPTION_MODEL, RunningApi, serve_app
from tests.integration.test_jobs import wait_job
from tests.pdfs import text_pdf

pytestmark = pytest.mark.integration

KEY = "hlai_admin-page-key-0123456789"
PAGE_MODEL = "lru-blip"  # keep-alive 600 s: stays loaded while the page is looked at


@pytest.fixture(scope="module")
def admin_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    """A frontend of its own over the shared Triton that may crawl loopback pages."""
    own = settings.model_copy(
        deep=True,
        update={
            "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            "crawl": settings.crawl.model_copy(update={"allow_private_networks": True}),
            "cache": settings.cache.model_copy(update={"enabled": True}),  # its hit rate shows
        },
    )
    app = create_app(own)
    server, thread, url = serve_app(app)
    yield RunningApi(url, app)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = screenshot_dir()
    yield path
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line(f"\nadmin page screenshots: {path}")


@pytest.fixture
def admin(browser: Browser, admin_api: RunningApi, shots: Path) -> Iterator[AdminPage]:
    page = new_admin_page(browser, admin_api.url, shots)
    yield page
    page.page.context.close()
    assert page.unexpected_errors() == []


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    trap = Listener()
    served = Site(trap.port)
    yield served
    served.close()
    trap.close()


def test_page_is_served_open_with_a_strict_policy(admin_api: RunningApi) -> None:
    with httpx.Client(base_url=admin_api.url) as http:
        root = http.get("/")
        assert root.status_code == 307 and root.headers["location"] == "admin"
        slash = http.get("/admin/")
        assert slash.status_code == 308 and slash.headers["location"] == "../admin"
        page = http.get("/admin")
        # relative links only, so a reverse proxy may serve the service under a path prefix
        assert 'href="admin/static/admin.css"' in page.text and '"/admin/static' not in page.text
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        script = http.get("/admin/static/admin.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert http.get("/admin/static/nope.js").status_code == 404
        assert "/admin" not in str(http.get("/openapi.json").json()["paths"])


def test_status_panel_refreshes_live(admin: AdminPage, admin_api: RunningApi) -> None:
    with admin_api.client() as http:  # something loaded, and some traffic to show
        for _ in range(2):  # the second is a cache hit
            assert http.post("/api/embed", json={"texts": ["warm up"]}).status_code == 200
        traffic = http.get("/api/status").json()["traffic"]
    assert traffic["requests"] >= 1 and traffic["mean_latency_ms"] > 0
    assert traffic["window_seconds"] == 60 and traffic["requests_per_second"] > 0
    admin.open()
    assert admin.page.url.endswith("/admin#status")
    assert admin.wait_text("#st-triton", lambda t: t == "ready")
    first = admin.wait_text("#connection", lambda t: t.startswith("live"))
    admin.wait_text("#connection", lambda t: t.startswith("live") and t != first, timeout=10)
    assert admin.page.locator("#st-models tr[data-model=minilm]").count() == 1
    assert admin.text("#st-models tr[data-model=minilm] td:last-child").startswith("ok")
    assert float(admin.text("#st-rate")) > 0
    assert admin.text("#st-latency").endswith(" ms")
    assert admin.text("#st-cache").endswith(" %")
    assert "hits" in admin.text("#st-cache-detail") and "memory" in admin.text("#st-cache-detail")
    admin.snap("status")


def test_download_shows_progress_then_delete_asks_first(
    admin: AdminPage, admin_api: RunningApi, fake_hub: FakeHub, settings: Settings
) -> None:
    card = f'#models-list article.model[data-hf-id="{HUB_CAPTION_MODEL}"]'
    fake_hub.chunk_delay = 0.05  # ~1 s for its 229 KB: the bar is seen moving
    try:
        admin.open("models")
        admin.page.wait_for_selector('article.model[data-model="minilm"]')
        admin.page.evaluate(
            """card => { window.samples = []; setInterval(() => {
                const bar = document.querySelector(card + " progress");
                if (bar && bar.offsetParent && bar.hasAttribute("value"))
                    window.samples.push([bar.value, bar.max]); }, 20); }""",
            card,
        )
        admin.page.fill("#add-model", HUB_CAPTION_MODEL)
        admin.page.click("#add-form button[type=submit]")
        admin.wait_text(f"{card} .badges", lambda t: t.startswith("downloaded"))
        samples = admin.page.evaluate("window.samples")
        assert any(0 < value < total for value, total in samples), samples
        assert admin.text("#add-message") == f"{HUB_CAPTION_MODEL} downloaded"
        assert admin.page.locator(f"{card} .progress").is_hidden()
        admin.snap("models")

        admin.page.once("dialog", lambda dialog: dialog.dismiss())
        admin.page.click(f"{card} button[data-action=delete]")
        admin.page.wait_for_timeout(300)
        assert repo_dir(settings.models_dir / "hub", HUB_CAPTION_MODEL).exists()  # declined
        asked: list[str] = []
        admin.page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        admin.page.click(f"{card} button[data-action=delete]")
        admin.page.wait_for_selector(card, state="detached")
        assert HUB_CAPTION_MODEL in asked[0]
    finally:
        fake_hub.chunk_delay = 0.0
        with admin_api.client() as http:
            http.delete(f"/api/models/{HUB_CAPTION_MODEL}")  # 404 when the page deleted it
    assert not repo_dir(settings.models_dir / "hub", HUB_CAPTION_MODEL).exists()


def test_load_pin_keep_alive_and_unload(admin: AdminPage, admin_api: RunningApi) -> None:
    card = f'#models-list article.model[data-model="{PAGE_MODEL}"]'
    try:
        admin.open("models")
        admin.page.click(f"{card} button[data-action=load]")
        admin.wait_text(f"{card} .badges", lambda t: "not loaded" not in t and "loaded" in t)
        assert "Memory" in admin.text(f"{card} .facts")
        admin.page.click(f"{card} button[data-action=pin]")
        admin.wait_text(f"{card} .badges", lambda t: "pinned" in t)
        assert admin.text(f"{card} button[data-action=pin]") == "Unpin"
        admin.page.click(f"{card} button[data-action=pin]")
        admin.wait_text(f"{card} .badges", lambda t: "pinned" not in t)
        admin.page.fill(f"{card} .keep-alive input", "1234")
        admin.page.click(f"{card} .keep-alive button")
        admin.wait_text(f"{card} .facts", lambda t: "20 min 34 s" in t)
        with admin_api.client() as http:
            info = http.get(f"/api/models/{PAGE_MODEL}").json()
        assert (info["keep_alive_seconds"], info["loaded"]) == (1234, True)
        admin.page.click(f"{card} button[data-action=unload]")
        admin.wait_text(f"{card} .badges", lambda t: "not loaded" in t)
    finally:
        with admin_api.client() as http:
            reset = {"keep_alive_seconds": None, "pinned": None}
            http.patch(f"/api/models/{PAGE_MODEL}", json=reset)
            http.post(f"/api/models/{PAGE_MODEL}/unload")


def test_embed_shows_the_cosine_similarity(admin: AdminPage, admin_api: RunningApi) -> None:
    texts = ["The heron stood in the pond.", "A grey bird waited in the water."]
    admin.open("try")
    admin.page.fill("#embed-a", texts[0])
    admin.page.fill("#embed-b", texts[1])
    admin.page.click("#embed-form button[type=submit]")
    shown = float(admin.wait_text("#embed-similarity", bool))
    with admin_api.client() as http:
        vectors = http.post("/api/embed", json={"texts": texts}).json()["embeddings"]
    a, b = (np.array(v) for v in vectors)
    expected = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert math.isclose(shown, expected, abs_tol=1e-4)
    assert "minilm" in admin.text("#embed-result")
    admin.snap("try-embed")


def test_uploaded_image_shows_caption_and_ocr_text_with_boxes(
    admin: AdminPage, tmp_path: Path
) -> None:
    image = tmp_path / "note.png"
    image.write_bytes(encode(render_text(["Hello Triton 2026"])))
    admin.open("try")
    admin.page.set_input_files("#image-file", str(image))
    admin.page.click("#image-form button[type=submit]")
    # Both models may load first (a minute or more on a busy machine).
    ocr = admin.wait_text("#ocr-result", lambda t: t not in ("", "…"), timeout=240)
    assert ocr == "Hello Triton 2026"
    admin.wait_text("#caption-result", lambda t: t != "…", timeout=240)
    assert admin.text("#caption-error") == ""
    assert admin.page.locator("#image-canvas").get_attribute("data-boxes") == "1"
    admin.snap("try-image")


def test_uploaded_pdf_shows_each_page_with_its_boxes_and_text(
    admin: AdminPage, tmp_path: Path
) -> None:
    document = tmp_path / "letter.pdf"
    document.write_bytes(
        text_pdf([["Dear Ada,", "the mill is open."], ["Yours, Bob"]], size=(400, 200))
    )
    admin.open("try")
    admin.page.set_input_files("#document-file", str(document))
    admin.page.fill("#document-dpi", "100")
    admin.page.click("#document-form button[type=submit]")
    assert admin.wait_text("#document-summary", lambda t: "pages" in t).startswith("2 of 2 pages")
    # The summary comes first; each page's canvas and text follow as its image loads
    canvases = admin.page.locator("#document-pages-out canvas")
    expect(canvases).to_have_count(2, timeout=30_000)
    expect(admin.page.locator("#document-pages-out pre")).to_have_count(2, timeout=30_000)
    assert canvases.count() == 2
    assert [canvases.nth(i).get_attribute("data-boxes") for i in range(2)] == ["2", "1"]
    # 400 x 200 points at 100 DPI
    assert canvases.nth(0).evaluate("c => [c.width, c.height]") == [556, 278]
    texts = admin.page.locator("#document-pages-out pre").all_inner_texts()
    assert texts == ["Dear Ada,\nthe mill is open.", "Yours, Bob"]
    assert admin.page.locator("#document-pages-out figcaption").all_inner_texts() == [
        "Page 1 · text layer · 2 lines",
        "Page 2 · text layer · 1 line",
    ]
    admin.snap("try-document")


def test_crawl_shows_title_text_and_screenshot(
    admin: AdminPage, admin_api: RunningApi, site: Site
) -> None:
    admin.open("try")
    admin.page.fill("#crawl-url", site.url("/article"))
    admin.page.click("#crawl-form button[type=submit]")
    assert admin.wait_text("#crawl-title", bool) == "Herons return to the mill pond"
    assert "mill pond" in admin.text("#crawl-text")
    admin.page.wait_for_function("document.querySelector('#crawl-image').naturalWidth > 0")
    admin.snap("try-crawl")

    # A refusal is shown as the API's own message.
    admin.expected.append("status of 400")
    with admin_api.client() as http:
        refused = http.post("/api/crawl", json={"url": "ftp://example.com/x"}).json()
    admin.page.fill("#crawl-url", "ftp://example.com/x")
    admin.page.click("#crawl-form button[type=submit]")
    assert admin.wait_text("#crawl-error", bool) == refused["error"]["message"]


def test_jobs_panel_lists_a_job_and_shows_its_result(
    admin: AdminPage, admin_api: RunningApi
) -> None:
    with admin_api.client() as http:
        prefer = {"Prefer": "respond-async"}
        created = http.post("/api/embed", json={"texts": ["a panel job"]}, headers=prefer)
        job = wait_job(http, created.headers["Location"])
    assert job["status"] == "succeeded"
    admin.open("jobs")
    row = f"#jobs-table tr[data-job='{job['id']}']"
    admin.page.wait_for_selector(row)
    assert admin.text(f"{row} .badge") == "succeeded"
    assert admin.text(f"{row} td:nth-child(2)") == "/api/embed"
    admin.page.click(f"{row} button:has-text('Result')")
    detail = admin.wait_text("#job-detail", bool)
    assert '"embeddings"' in detail and '"model_used": "minilm"' in detail
    assert admin.wait_text("#jobs-total", bool).endswith("jobs")
    admin.snap("jobs")


def test_a_wrong_key_shows_the_401_message_and_the_right_one_unlocks(
    admin: AdminPage, admin_api: RunningApi, settings: Settings
) -> None:
    admin.expected.append("status of 401")  # the browser notes each refused request
    keys = [{"key_hash": hash_key(KEY), "name": "owner"}]
    admin_api.app.state.security = Security(SecuritySection(api_keys=keys))
    try:
        admin.open()
        assert "API key is required" in admin.wait_text("#auth-message", bool)
        admin.page.fill("#auth-key", "hlai_wrong-key-0000000000")
        admin.page.click("#auth-form button[type=submit]")
        assert admin.wait_text("#auth-message", lambda t: "not valid" in t) == (
            "the API key is not valid"
        )
        admin.snap("auth")
        admin.page.fill("#auth-key", KEY)
        admin.page.click("#auth-form button[type=submit]")
        admin.wait_text("#st-triton", lambda t: t == "ready")
        assert admin.page.locator("#auth").is_hidden()
        stored = admin.page.evaluate("[sessionStorage.length, localStorage.length]")
        assert stored == [1, 0] and admin.page.context.cookies() == []
        assert not any(KEY in url for url in admin.requested)
    finally:
        admin_api.app.state.security = Security(settings.security)
