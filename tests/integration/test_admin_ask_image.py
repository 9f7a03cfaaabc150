"""The Try it tab's "Ask about an image" in a real Chromium over the session's real Triton: an
uploaded image and a question reach the tiny LLaVA through Ollama's NDJSON stream, behind an
API key, and the answer appears chunk by chunk."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from frontend.app import create_app
from frontend.core.config import SecuritySection, Settings
from frontend.core.security import hash_key
from frontend.triton.embedded import EmbeddedTriton
from tests.images import encode, render_text
from tests.integration.admin_browser import AdminPage, launch, new_admin_page, screenshot_dir
from tests.integration.conftest import RunningApi, serve_app

pytestmark = pytest.mark.integration

KEY = "hlai_admin-ask-image-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODEL = "tiny-llava"
QUESTION = "What is written here?"
# Counts the text nodes the panel appends to the answer: one per NDJSON chunk with text.
COUNT_APPENDS = """() => {
  const answer = document.querySelector('#askimage-answer');
  window.askAppends = 0;
  new MutationObserver((records) => {
    for (const record of records) window.askAppends += record.addedNodes.length;
  }).observe(answer, { childList: true });
}"""


@pytest.fixture(scope="module")
def ask_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    keys = [{"key_hash": hash_key(KEY), "name": "owner"}]
    own = settings.model_copy(
        deep=True,
        update={
            "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            "security": SecuritySection(api_keys=keys),
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


@pytest.fixture
def admin(browser: Browser, ask_api: RunningApi) -> Iterator[AdminPage]:
    page = new_admin_page(browser, ask_api.url, screenshot_dir())
    page.expected.append("401")  # the page's first call, before the key is typed
    yield page
    page.page.context.close()
    assert page.unexpected_errors() == []


def unlocked_try_tab(admin: AdminPage) -> None:
    admin.open()
    admin.page.wait_for_selector("#auth", state="visible")
    admin.page.fill("#auth-key", KEY)
    admin.page.click("#auth-form button[type=submit]")
    admin.page.wait_for_selector("#auth", state="hidden")
    admin.tab("try")
    admin.page.wait_for_selector(f"#askimage-model option[value='{MODEL}']", state="attached")


def test_asked_image_streams_the_models_answer(
    admin: AdminPage, ask_api: RunningApi, tmp_path: Path
) -> None:
    png = encode(render_text(["OPEN 9-5"]))
    image = tmp_path / "sign.png"
    image.write_bytes(png)
    unlocked_try_tab(admin)
    admin.page.set_input_files("#askimage-file", str(image))
    admin.page.fill("#askimage-prompt", QUESTION)
    admin.page.select_option("#askimage-model", MODEL)
    admin.page.evaluate(COUNT_APPENDS)
    admin.page.click("#askimage-form button[type=submit]")
    admin.page.wait_for_selector("#askimage-answer[data-state=done]", state="attached")
    shown = admin.text("#askimage-answer")
    assert admin.text("#askimage-error") == ""
    body = {"model": MODEL, "prompt": QUESTION, "images": [base64.b64encode(png).decode()]}
    with ask_api.client(headers=AUTH) as http:
        whole = http.post("/api/generate", json=body | {"stream": False}).json()
    assert shown == whole["response"] and shown  # greedy: the stream adds up to the answer
    assert admin.page.evaluate("window.askAppends") >= 2  # several chunks, each shown
    meta = admin.text("#askimage-meta")
    assert meta.startswith(f"{whole['eval_count']} tokens · {whole['done_reason']}")
    assert admin.page.locator("#askimage-stop").is_hidden()
    admin.snap("try-ask-image")


def test_a_file_that_is_no_image_shows_the_apis_message(admin: AdminPage, tmp_path: Path) -> None:
    admin.expected.append("400")  # the browser notes the refused request
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    unlocked_try_tab(admin)
    admin.page.set_input_files("#askimage-file", str(text))
    admin.page.select_option("#askimage-model", MODEL)
    admin.page.click("#askimage-form button[type=submit]")
    admin.page.wait_for_selector("#askimage-answer[data-state=failed]", state="attached")
    error = admin.text("#askimage-error")
    assert "image" in error.lower() and "HTTP" not in error  # the API's words, not a status
    assert admin.text("#askimage-answer") == ""
