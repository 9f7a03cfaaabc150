"""The admin page's image search in a real Chromium over the real Triton: three uploaded images
ranked for a typed query by the tiny CLIP's cosine (text tower vs image tower)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser

from tests.images import encode
from tests.integration.admin_browser import AdminPage, launch, new_admin_page, screenshot_dir
from tests.integration.conftest import RunningApi
from tools.build_test_models import TINY_CLIP, build_test_models

pytestmark = pytest.mark.integration

MODEL = "tiny-clip"
QUERY = "a red car in the city"


@pytest.fixture(scope="module")
def search_api(api: RunningApi, data_dir: Path) -> RunningApi:
    """The run's shared frontend with the tiny transformers CLIP added (as the image-embedding
    tests add it: one frontend manages a Triton model, never two)."""
    build_test_models(data_dir, "clip")
    with api.client() as http:
        added = http.post(
            "/api/models", json={"task": "image_embedding", "hf_model": TINY_CLIP, "id": MODEL}
        )
        assert added.status_code in (200, 201, 409), added.text
    return api


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def admin(browser: Browser, search_api: RunningApi) -> Iterator[AdminPage]:
    page = new_admin_page(browser, search_api.url, screenshot_dir())
    yield page
    page.page.context.close()
    assert page.unexpected_errors() == []


def pictures(folder: Path) -> list[Path]:
    """A red, a blue and a noisy picture (different vectors under random weights)."""
    noise = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    arrays = {
        "red.png": np.full((48, 64, 3), (220, 30, 30), dtype=np.uint8),
        "blue.png": np.full((60, 40, 3), (20, 40, 230), dtype=np.uint8),
        "noise.png": noise,
    }
    paths = []
    for name, array in arrays.items():
        path = folder / name
        path.write_bytes(encode(Image.fromarray(array)))
        paths.append(path)
    return paths


def test_uploaded_images_are_ranked_by_the_models_cosine(
    admin: AdminPage, search_api: RunningApi, tmp_path: Path
) -> None:
    files = pictures(tmp_path)
    admin.open("try")
    admin.page.wait_for_selector(f"#imagesearch-model option[value='{MODEL}']", state="attached")
    admin.page.select_option("#imagesearch-model", MODEL)
    admin.page.set_input_files("#imagesearch-files", [str(path) for path in files])
    admin.page.fill("#imagesearch-query", QUERY)
    admin.page.click("#imagesearch-form button[type=submit]")
    admin.wait_text("#imagesearch-summary", lambda text: MODEL in text)
    items = admin.page.locator("#imagesearch-result li")
    shown = [
        (items.nth(i).get_attribute("data-name"), float(items.nth(i).get_attribute("data-score")))
        for i in range(items.count())
    ]
    assert admin.text("#imagesearch-error") == ""
    # the same vectors through the API: the text's, then the images'
    body = {
        "model": MODEL,
        "texts": [QUERY],
        "images": [base64.b64encode(path.read_bytes()).decode() for path in files],
    }
    with search_api.client() as http:
        response = http.post("/api/embed", json=body)
    assert response.status_code == 200, response.text
    text, *images = (np.array(v) for v in response.json()["embeddings"])
    expected = sorted(
        ((path.name, float(text @ image)) for path, image in zip(files, images, strict=True)),
        key=lambda pair: -pair[1],
    )
    assert [name for name, _ in shown] == [name for name, _ in expected]
    np.testing.assert_allclose([s for _, s in shown], [s for _, s in expected], atol=1e-4)
    # each row shows its score and thumbnail
    first = items.nth(0)
    assert first.locator(".score").inner_text() == f"{expected[0][1]:.4f}"
    assert first.locator("img.thumb").evaluate("img => img.complete && img.naturalWidth > 0")
    # a second query reuses the images' vectors: only the text is sent
    embeds = len([url for url in admin.requested if url.endswith("/api/embed")])
    admin.page.fill("#imagesearch-query", "blue sky")
    admin.page.click("#imagesearch-form button[type=submit]")
    admin.page.wait_for_selector("#imagesearch-result li:nth-child(3)")
    assert len([url for url in admin.requested if url.endswith("/api/embed")]) == embeds + 1
    admin.snap("try-image-search")
