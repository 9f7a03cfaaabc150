"""The load test's pieces without a server: the locustfile's tasks send bodies the API
accepts to routes that exist, its verdicts are right, and the runner reads Locust's CSV."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.routing import APIRoute

from frontend.crawl.routes import router as crawl_router
from frontend.crawl.schemas import CrawlRequest
from frontend.embed.routes import router as embed_router
from frontend.embed.schemas import EmbedRequest
from frontend.images.decode import ImageLimits, decode_image
from frontend.images.routes import router as images_router
from frontend.status.routes import router as status_router
from tools.loadtest import payloads
from tools.loadtest.locust_run import read_results

LOCUSTFILE = Path(__file__).parents[2] / "tools" / "loadtest" / "locustfile.py"
TASKS = {"embed_single", "embed_batch", "ocr", "caption", "crawl", "status"}
CRAWL_URL = "http://127.0.0.1:9/article"


@pytest.fixture(scope="module")
def locustfile() -> Iterator[ModuleType]:
    # Importing Locust monkey-patches the whole process for gevent unless told not to: the
    # rest of the test session runs threads and asyncio and must not be patched.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
        spec = importlib.util.spec_from_file_location("homelab_locustfile", LOCUSTFILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


class FakeResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.verdict: str | None = None

    def success(self) -> None:
        self.verdict = "success"

    def failure(self, message: str) -> None:
        self.verdict = message


class FakeClient:
    """Records what a task sends, and answers every request with one status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sent: list[dict[str, Any]] = []
        self.responses: list[FakeResponse] = []

    @contextmanager
    def request(self, method: str, path: str, **kwargs: Any) -> Iterator[FakeResponse]:
        self.sent.append({"method": method, "path": path, **kwargs})
        response = FakeResponse(self.status)
        self.responses.append(response)
        yield response


def run_task(module: ModuleType, name: str, status: int = 200) -> FakeClient:
    user_class = module.HomelabUser

    class FakeUser:
        _call = user_class._call

        def __init__(self) -> None:
            self.client = FakeClient(status)

    user = FakeUser()
    getattr(user_class, name)(user)
    return user.client


def api_routes() -> set[tuple[str, str]]:
    routers = [embed_router, images_router, crawl_router, status_router]
    return {
        (method, route.path)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_the_user_has_every_task_weighted(locustfile: ModuleType) -> None:
    # Locust repeats a task once per unit of weight in `tasks`.
    names = [t.__name__ for t in locustfile.HomelabUser.tasks]
    assert set(names) == TASKS
    assert names.count("embed_single") > names.count("crawl") >= 1


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_sends_one_request_to_a_route_the_api_has(
    locustfile: ModuleType, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(payloads.CRAWL_URL_ENV, CRAWL_URL)
    client = run_task(locustfile, name)
    assert len(client.sent) == 1
    sent = client.sent[0]
    assert (sent["method"], sent["path"]) in api_routes()
    assert sent["catch_response"] is True and sent["timeout"] > 0
    assert sent["name"]  # one stats row per task, not per URL


def test_the_bodies_pass_the_apis_own_validation(locustfile: ModuleType) -> None:
    assert len(EmbedRequest.model_validate(payloads.embed_single_body()).texts) == 1
    batch = EmbedRequest.model_validate(payloads.embed_batch_body()).texts
    assert len(batch) == payloads.EMBED_BATCH == 32
    assert CrawlRequest.model_validate(payloads.crawl_body(CRAWL_URL)).url == CRAWL_URL
    limits = ImageLimits(max_pixels=40_000_000, max_side=16_384)
    for body in (payloads.ocr_body(), payloads.caption_body()):
        image = decode_image(base64.b64decode(body["image"]), 0, limits)
        assert image.ndim == 3 and image.shape[2] == 3


def test_without_a_crawl_url_the_crawl_task_sends_nothing(
    locustfile: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(payloads.CRAWL_URL_ENV, raising=False)
    assert run_task(locustfile, "crawl").sent == []


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, "success"), (429, "success"), (503, "success"), (500, "HTTP 500"), (504, "HTTP 504")],
)
def test_only_200_429_and_503_count_as_success(
    locustfile: ModuleType, status: int, verdict: str
) -> None:
    assert run_task(locustfile, "status", status).responses[0].verdict == verdict
    assert locustfile.ALLOWED_STATUSES == payloads.ALLOWED_STATUSES


def test_statuses_are_counted_per_task_and_written_at_quit(
    locustfile: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locustfile, "status_counts", defaultdict(Counter))
    for status in (200, 200, 503):
        locustfile.count_status(name="ocr", response=FakeResponse(status))
    locustfile.count_status(name="ocr", response=None)  # a connection error
    out = tmp_path / "statuses.json"
    monkeypatch.setenv(payloads.STATUS_FILE_ENV, str(out))
    locustfile.write_status_counts()
    assert json.loads(out.read_text()) == {"ocr": {"0": 1, "200": 2, "503": 1}}


def test_the_runner_reads_locusts_csv_and_the_status_counts(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%\n"
    rows = "POST,ocr,10,1,2.0,40,90\nGET,status,5,0,1.0,5,8\n,Aggregated,15,1,3.0,30,85\n"
    (tmp_path / "run_stats.csv").write_text(header + rows)
    statuses = tmp_path / "statuses.json"
    statuses.write_text(json.dumps({"ocr": {"200": 9, "500": 1}, "status": {"200": 5}}))
    result = read_results(tmp_path / "run", statuses, 5, "")
    assert [t.name for t in result.tasks] == ["ocr", "status", "Aggregated"]
    assert result.tasks[0].p95_ms == 90 and result.tasks[0].statuses == {200: 9, 500: 1}
    assert result.status_totals() == {200: 14, 500: 1}
    assert result.disallowed() == {500: 1}
    assert result.goodput() == 14 / 5
    assert result.total.requests == 15 and result.total.requests_per_second == 3
