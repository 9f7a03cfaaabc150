"""The Status tab's charts: GET /api/status/history over the real Triton, and uPlot drawing it
in a real Chromium (a screenshot of each chart holds its series' colour)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser

from frontend.app import create_app
from frontend.core.config import SecuritySection, Settings
from frontend.core.security import hash_key
from frontend.status.history import StatusHistory
from frontend.triton.embedded import EmbeddedTriton
from tests.integration.admin_browser import AdminPage, launch, new_admin_page, screenshot_dir
from tests.integration.conftest import RunningApi, serve_app

pytestmark = pytest.mark.integration

KEY = "hlai_admin-charts-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
INTERVAL = 0.5  # seconds between points here (10 in the service), so a test sees several
FIRST_SERIES = (0x2F, 0x5B, 0xD3)  # charts.js's first colour: requests/s, embed, minilm


@pytest.fixture(scope="module")
def charts_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    keys = [{"key_hash": hash_key(KEY), "name": "owner"}]
    own = settings.model_copy(
        deep=True,
        update={
            "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            "security": SecuritySection(api_keys=keys),
        },
    )
    app = create_app(own)
    app.state.history = StatusHistory(interval=INTERVAL)
    server, thread, url = serve_app(app)
    yield RunningApi(url, app)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def admin(browser: Browser, charts_api: RunningApi) -> Iterator[AdminPage]:
    page = new_admin_page(browser, charts_api.url, screenshot_dir())
    page.expected.append("401")  # the page's first call, before the key is typed
    yield page
    page.page.context.close()
    assert page.unexpected_errors() == []


def history_until(http: httpx.Client, wanted: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = http.get("/api/status/history", headers=AUTH).json()
        if wanted(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_history_needs_a_key_and_is_documented(charts_api: RunningApi) -> None:
    with charts_api.client() as http:
        refused = http.get("/api/status/history")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert http.get("/api/status/history", headers=AUTH).status_code == 200
        operation = http.get("/openapi.json").json()["paths"]["/api/status/history"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/StatusHistoryOut")


def test_history_samples_rates_latency_and_model_memory(charts_api: RunningApi) -> None:
    with charts_api.client(headers=AUTH) as http:
        for i in range(3):
            assert http.post("/api/embed", json={"texts": [f"chart {i}"]}).status_code == 200
        assert http.post("/api/embed", json={"texts": []}).status_code == 400
        data = history_until(
            http,
            lambda d: "embed" in d["latency_ms"] and d["model_memory_bytes"].get("minilm"),
        )
    columns = [data["requests_per_second"], data["server_errors_per_second"], data["t"]]
    assert len({len(c) for c in columns}) == 1 and len(data["t"]) >= 1
    assert data["interval_seconds"] == INTERVAL and data["capacity"] == 360
    assert max(data["requests_per_second"]) > 0 and max(data["client_errors_per_second"]) > 0
    p50 = [v for v in data["latency_ms"]["embed"]["p50"] if v is not None]
    p95 = [v for v in data["latency_ms"]["embed"]["p95"] if v is not None]
    assert p50 and all(0 < a <= b for a, b in zip(p50, p95, strict=True))
    memory = [v for v in data["model_memory_bytes"]["minilm"] if v]
    assert memory and min(memory) > 10 * 2**20  # a stub with torch and the weights: >> 10 MiB
    assert data["gpu_memory_used_bytes"] is None  # no GPU on this machine


def series_pixels(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels of the screenshot within `tolerance` of the series' colour (antialiasing)."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=2).sum())


def test_status_tab_draws_the_last_hour(admin: AdminPage, charts_api: RunningApi) -> None:
    stop = threading.Event()

    def traffic() -> None:  # steady load, so the rate and latency lines have something to show
        with charts_api.client(headers=AUTH) as http:
            for i in range(2000):
                if stop.wait(0.1):
                    return
                http.post("/api/embed", json={"texts": [f"traffic {i}"]})

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        admin.open()
        admin.page.wait_for_selector("#auth", state="visible")
        admin.page.fill("#auth-key", KEY)
        admin.page.click("#auth-form button[type=submit]")
        admin.wait_text("#charts-note", lambda t: t.startswith("last"))
        with charts_api.client(headers=AUTH) as http:
            history_until(http, lambda d: len(d["t"]) >= 4 and "embed" in d["latency_ms"])
        for name in ("rate", "latency", "memory"):
            admin.page.wait_for_selector(f"#chart-{name} canvas")
        # the legends name the series the charts draw
        admin.wait_text("#chart-latency .u-legend", lambda t: "embed p95" in t)
        admin.wait_text("#chart-memory .u-legend", lambda t: "minilm" in t)
        admin.page.wait_for_timeout(2500)  # two more polls: the lines span several points
        assert admin.page.locator("#chart-gpu-card").is_hidden()  # no GPU here
        for name in ("rate", "latency", "memory"):
            canvas = admin.page.locator(f"#chart-{name} canvas")
            shot = canvas.screenshot(path=str(admin.shots / f"status-chart-{name}.png"))
            assert series_pixels(shot, FIRST_SERIES) > 20, f"the {name} chart drew no line"
        admin.snap("status-charts")  # also: no sideways scrolling at phone width
        # the charts were fitted to the phone width when the viewport shrank
        admin.page.set_viewport_size({"width": 390, "height": 844})
        canvas = admin.page.locator("#chart-rate canvas")
        for _ in range(100):  # the resize handler's redraw: up to 10 s on a busy machine
            width = canvas.bounding_box()
            if width is not None and width["width"] <= 390:
                break
            admin.page.wait_for_timeout(100)
        assert width is not None and width["width"] <= 390
    finally:
        stop.set()
        sender.join(30)
    assert Path(admin.shots / "status-chart-rate.png").stat().st_size > 0
