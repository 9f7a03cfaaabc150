"""One real Triton per test run, and the API served over real HTTP in front of it.

A plugin (tests/conftest.py names it in ``pytest_plugins``), not a conftest: the integration and
fault suites share these session fixtures, so one run starts one Triton whichever suites it
collects. A conftest importing them would define them a second time, with a second Triton."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from frontend.app import create_app
from frontend.core.config import Settings, load_settings
from frontend.models.cache import import_model, snapshot_path
from frontend.models.catalog import ModelCatalog
from frontend.triton.embedded import EmbeddedTriton, TritonPorts, triton_environment
from frontend.triton.repository import write_repository
from tests.conftest import MINILM_ID
from tests.fake_hub import FakeHub
from tests.serving import serve_app
from tools.build_test_models import TINY_BLIP, TINY_LLAVA, TINY_RERANKER, build_test_models

MODELS: dict[str, Any] = {
    "text_embedding": [
        {
            "id": "minilm",
            "hf_model": MINILM_ID,
            "dimensions": 384,
            "default": True,
            "threads": 1,
            "max_batch_size": 16,
            "max_queue_delay_us": 5000,
        },
        # configured but never downloaded
        {"id": "ghost", "hf_model": "nobody/not-downloaded"},
        # in the cache but not a loadable model
        {"id": "broken", "hf_model": "test/broken-model"},
        # enabled: false hides it from the API
        {"id": "hidden", "hf_model": MINILM_ID, "enabled": False},
        # unloaded after 2 idle seconds
        {"id": "minilm-brief", "hf_model": MINILM_ID, "keep_alive_seconds": 2},
    ],
    "image_caption": [
        {
            "id": "tiny-blip",
            "hf_model": "homelab-test/tiny-blip",
            "default": True,
            "max_batch_size": 8,
            "max_queue_delay_us": 20000,
            "max_new_tokens": 8,
        },
        {"id": "lru-blip", "hf_model": "homelab-test/tiny-blip", "keep_alive_seconds": 600},
        # a chat-template VLM (tests/integration/test_vision.py)
        {"id": "tiny-llava", "hf_model": TINY_LLAVA, "max_batch_size": 8, "max_new_tokens": 8},
        *(
            {"id": f"tiny-{family}", "hf_model": f"homelab-test/tiny-{family}", "max_new_tokens": 8}
            for family in ("qwen2-vl", "smolvlm", "florence2")
        ),
    ],
    "ocr": [
        {"id": "rapidocr", "hf_model": "rapidocr/PP-OCRv4", "default": True, "threads": 2},
        {"id": "tiny-trocr", "hf_model": "homelab-test/tiny-trocr", "max_new_tokens": 6},
        # Debian's traineddata (tools/install.sh --dev installs eng and deu)
        {"id": "tesseract", "hf_model": "tesseract/5", "languages": ["eng", "deu"]},
        # used only by the LRU eviction test's own frontend (long keep-alive)
        {"id": "lru-rapidocr", "hf_model": "rapidocr/PP-OCRv4", "keep_alive_seconds": 600},
        {"id": "lru-trocr", "hf_model": "homelab-test/tiny-trocr", "keep_alive_seconds": 600},
        {
            "id": "rapidocr-pinned",
            "hf_model": "rapidocr/PP-OCRv4",
            "pinned": True,
            "keep_alive_seconds": 0.5,
        },
    ],
    "rerank": [
        {
            "id": "tiny-reranker",
            "hf_model": TINY_RERANKER,
            "default": True,
            "max_batch_size": 16,
            "max_queue_delay_us": 5000,
        },
        {"id": "tiny-reranker-torch", "hf_model": TINY_RERANKER, "engine": "torch"},
    ],
}
# Triton's stubs import `frontend` from the installed (editable) checkout, whatever the test
# run's own tree; HOMELAB_TEST_STUB_CODE=1 makes them import this checkout's instead (a link
# in their working directory, which comes first on their sys.path). For worktrees only.
STUB_CODE_ENV = "HOMELAB_TEST_STUB_CODE"
LIMITS = {
    "max_texts_per_request": 100,
    "max_text_chars": 2000,
    "max_rerank_documents": 50,
    "max_body_bytes": 4 * 1024 * 1024,
    "max_images_per_request": 8,
    "max_image_pixels": 12_000_000,
    "max_image_side": 8000,
    "max_new_tokens": 16,
    "max_num_beams": 3,
    "max_document_pages": 12,
}


class LoopThread:
    """An event loop in a thread, for async start/stop from synchronous fixtures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, minilm_source: Path) -> Path:
    root = tmp_path_factory.mktemp("data")
    hub = root / "models" / "hub"
    import_model(minilm_source, MINILM_ID, hub)
    broken = tmp_path_factory.mktemp("broken-model")
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    import_model(broken, "test/broken-model", hub)
    build_test_models(root)
    return root


# The session Triton's model-repository API answers only to this key (as in embedded mode).
ADMIN_KEY = "test-admin-key-0123456789"
ADMIN_HEADERS = {"admin-key": ADMIN_KEY}
# What the session's fake Hugging Face hub serves (a copy of the tiny BLIP under another id).
HUB_CAPTION_MODEL = "acme/tiny-caption"


@pytest.fixture(scope="session")
def fake_hub(data_dir: Path) -> Iterator[FakeHub]:
    snapshot = snapshot_path(data_dir / "models" / "hub", TINY_BLIP)
    assert snapshot is not None
    with FakeHub({HUB_CAPTION_MODEL: snapshot}) as hub:
        yield hub


@pytest.fixture(scope="session")
def settings(data_dir: Path, fake_hub: FakeHub) -> Settings:
    return load_settings(
        None,
        data_dir=data_dir,
        models=MODELS,
        limits=LIMITS,
        hub={"endpoint": fake_hub.url, "etag_timeout_seconds": 3},
        triton={"admin_key": ADMIN_KEY},
        # Off for the shared API: tests that count loads and inferences repeat their inputs.
        # tests/integration/test_cache.py runs frontends of its own with it on.
        cache={"enabled": False},
    )


@pytest.fixture(scope="session")
def triton(settings: Settings) -> Iterator[EmbeddedTriton]:
    """The real tritonserver every integration test of the run shares."""
    write_repository(settings, ModelCatalog(settings).all(enabled=False))
    if os.environ.get(STUB_CODE_ENV) == "1":
        link = settings.data_dir / "triton" / "frontend"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(Path(__file__).resolve().parents[2] / "frontend")
    server = EmbeddedTriton(
        repositories=[settings.triton_repository_dir],
        work_dir=settings.data_dir / "triton",
        ports=TritonPorts.choose(),
        env=triton_environment(settings),
        admin_key=ADMIN_KEY,
    )
    loop = LoopThread()
    loop.run(server.start(60))
    yield server
    loop.run(server.stop())
    loop.close()


@dataclass
class RunningApi:
    url: str
    app: FastAPI

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)


@pytest.fixture(scope="session")
def api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    """The frontend in external-Triton mode (triton.url), over real HTTP on loopback."""
    app = create_app(
        settings.model_copy(
            update={"triton": settings.triton.model_copy(update={"url": triton.grpc_url})}
        )
    )
    server, thread, url = serve_app(app)
    yield RunningApi(url, app)
    server.should_exit = True
    thread.join(30)


def concurrent_posts(
    api: RunningApi, bodies: list[dict[str, Any]], path: str = "/api/embed"
) -> list[httpx.Response]:
    """POST every body to `path` at the same moment, one client thread each."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> httpx.Response:
        with api.client() as http:
            barrier.wait()
            return http.post(path, json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def triton_log_count(triton: EmbeddedTriton, text: str) -> int:
    return (triton.work_dir / "tritonserver.log").read_text(errors="replace").count(text)


@pytest.fixture
def client(api: RunningApi) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http
