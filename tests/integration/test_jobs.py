"""Async jobs on the real service and Triton: results equal to the synchronous calls, one job per
endpoint, cancel, owners, signed webhooks with retries, and the address policy for webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from frontend.core.config import SecuritySection, Settings
from frontend.core.security import hash_key
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.images import b64, encode, render_text
from tests.integration.fixtures import RunningApi

PREFER = {"Prefer": "respond-async"}
TEXTS_256 = [f"job text {i}: the homelab queue keeps every result" for i in range(256)]
SECRET = "webhook-secret-0123456789"
KEY_A, KEY_B = "hlai_jobs-key-a-0123456789abcdef", "hlai_jobs-key-b-0123456789abcdef"


def wait_job(http: httpx.Client, location: str, seconds: float = 120, **kw: Any) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = http.get(location, **kw).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {location} did not finish in {seconds} s")


def own_data(root: Path, data_dir: Path) -> Path:
    """A data dir of the frontend's own (its own job queue and store; the session's models):
    frontends sharing the session's data dir would share one SQLite queue and take each
    other's jobs with their own settings."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "models").symlink_to(data_dir / "models")
    return root


@pytest.fixture(scope="module")
def jobs_api(
    settings: Settings,
    triton: EmbeddedTriton,
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningApi]:
    limits = settings.limits.model_copy(update={"max_texts_per_request": 256})
    crawl = settings.crawl.model_copy(update={"allowed_hosts": ["127.0.0.1"]})
    jobs = settings.jobs.model_copy(
        update={"webhook_secret": SECRET, "webhook_backoff_seconds": 0.05, "lease_seconds": 3}
    )
    own = own_data(tmp_path_factory.mktemp("jobs-api"), data_dir)
    updates = {"limits": limits, "crawl": crawl, "jobs": jobs, "data_dir": own}
    with own_frontend(settings, triton, **updates) as api:
        yield api


@pytest.fixture
def http(jobs_api: RunningApi) -> Iterator[httpx.Client]:
    with jobs_api.client() as client:
        yield client


def test_a_256_text_job_polls_to_the_same_vectors_as_the_synchronous_call(
    http: httpx.Client,
) -> None:
    sync = http.post("/api/embed", json={"texts": TEXTS_256})
    assert sync.status_code == 200
    prefer = {"Prefer": "respond-async"}
    created = http.post("/api/embed", json={"texts": TEXTS_256}, headers=prefer)
    assert created.status_code == 202, created.text
    assert created.headers["Preference-Applied"] == "respond-async"
    location = created.headers["Location"]
    assert location == f"/api/jobs/{created.json()['id']}"
    assert created.json()["status"] == "queued"
    job = http.get(location, params={"wait": 60}).json()  # the long poll answers when done
    assert job["status"] == "succeeded", job
    assert job["http_status"] == 200 and job["progress"] == {"done": 1, "total": 1}
    assert job["timings"]["run_ms"] > 0 and job["runs"] == 1
    result, expected = job["result"], sync.json()
    assert set(result) == set(expected)
    assert result["dimensions"] == 384 and len(result["embeddings"]) == 256
    np.testing.assert_allclose(result["embeddings"], expected["embeddings"], atol=1e-6)


def _run(http: httpx.Client, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    created = http.post("/api/jobs", json={"endpoint": endpoint, "body": body})
    assert created.status_code == 202, created.text
    return wait_job(http, created.headers["Location"])


def test_every_task_endpoint_runs_as_a_job_with_the_synchronous_answer(http: httpx.Client) -> None:
    image = b64(encode(render_text(["Hello Jobs 42"], size=(360, 80))))
    caption = _run(http, "/api/caption", {"image": b64(encode(Image.new("RGB", (40, 30), "red")))})
    assert caption["status"] == "succeeded" and caption["result"]["caption"]
    assert caption["result"]["model_used"] == "tiny-blip"
    ocr = _run(http, "/api/ocr", {"image": image})
    assert ocr["status"] == "succeeded", ocr
    assert ocr["result"]["text"] == http.post("/api/ocr", json={"image": image}).json()["text"]
    rerank = _run(http, "/api/rerank", {"query": "cat", "documents": ["a cat", "a car"]})
    assert rerank["status"] == "succeeded", rerank
    # A refused crawl fails as a job exactly as it fails synchronously (same envelope).
    metadata = {"url": "http://169.254.169.254/latest/"}
    crawl = _run(http, "/api/crawl", metadata)
    sync = http.post("/api/crawl", json=metadata)
    assert crawl["status"] == "failed" and crawl["http_status"] == sync.status_code == 400
    assert crawl["error"]["code"] == sync.json()["error"]["code"] == "INVALID_REQUEST"
    assert crawl["error"]["details"] == sync.json()["error"]["details"]
    assert crawl["result"] is None
    # ?async=true works as the Prefer header does; a bad body fails in the job's envelope.
    bad = http.post("/api/embed?async=true", json={"texts": "not a list"})
    assert bad.status_code == 202
    failed = wait_job(http, bad.headers["Location"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "/api/models", "body": {}}, "endpoint"),
        ({"endpoint": "/api/embed"}, "body"),
        ({"endpoint": "/api/embed", "body": {}, "surprise": 1}, "surprise"),
    ],
)
def test_a_bad_job_request_is_a_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = http.post("/api/jobs", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert field in response.text


def test_queued_jobs_are_cancelled_listed_and_unknown_ids_are_404(
    settings: Settings, triton: EmbeddedTriton, data_dir: Path, tmp_path: Path
) -> None:
    jobs = settings.jobs.model_copy(update={"workers": 0})  # nothing runs: jobs stay queued
    own = own_data(tmp_path / "data", data_dir)
    with own_frontend(settings, triton, jobs=jobs, data_dir=own) as api, api.client() as http:
        ids = [
            http.post(
                "/api/jobs", json={"endpoint": "/api/embed", "body": {"texts": [str(i)]}}
            ).json()["id"]
            for i in range(3)
        ]
        listed = http.get("/api/jobs", params={"status": "queued", "limit": 2}).json()
        assert listed["total"] == 3 and len(listed["jobs"]) == 2
        assert [j["id"] for j in listed["jobs"]] == ids[:0:-1]  # newest first
        cancelled = http.delete(f"/api/jobs/{ids[0]}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.get(f"/api/jobs/{ids[0]}").json()["status"] == "cancelled"
        again = http.delete(f"/api/jobs/{ids[0]}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
        cancelled_ids = [j["id"] for j in http.get("/api/jobs?status=cancelled").json()["jobs"]]
        assert ids[0] in cancelled_ids
        missing = http.get("/api/jobs/0123456789abcdef")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
        status = http.get("/api/status").json()["jobs"]
        assert status["queued"] == status["queue_depth"] == 2 and status["cancelled"] == 1
        metrics = http.get("/metrics").text
        assert "job_queue_depth" in metrics and 'jobs_total{endpoint="/api/embed"' in metrics


def test_a_running_job_is_cancelled_at_once_and_its_result_discarded(http: httpx.Client) -> None:
    long_texts = [
        f"text {i}: " + "a long paragraph for the model to chew on " * 30 for i in range(32)
    ]
    created = http.post("/api/embed", json={"texts": long_texts}, headers=PREFER)
    location = created.headers["Location"]
    deadline = time.monotonic() + 60
    while http.get(location).json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    cancelled = http.delete(location)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # the worker notices within a third of the lease and takes the next job
    after = http.post("/api/embed", json={"texts": ["next"]}, headers=PREFER)
    assert wait_job(http, after.headers["Location"])["status"] == "succeeded"
    job = http.get(location).json()
    assert job["status"] == "cancelled" and job["result"] is None and job["error"] is None


def test_a_result_over_the_size_cap_fails_the_job_with_result_too_large(
    settings: Settings, triton: EmbeddedTriton, data_dir: Path, tmp_path: Path
) -> None:
    jobs = settings.jobs.model_copy(update={"max_result_bytes": 1024})
    own = own_data(tmp_path / "data", data_dir)
    with own_frontend(settings, triton, jobs=jobs, data_dir=own) as api, api.client() as http:
        created = http.post("/api/embed", json={"texts": ["384 floats"]}, headers=PREFER)
        job = wait_job(http, created.headers["Location"])
    assert job["status"] == "failed" and job["http_status"] == 200 and job["result"] is None
    assert job["error"]["code"] == "RESULT_TOO_LARGE" and "1024" in job["error"]["message"]


def test_another_key_cannot_see_or_cancel_a_job(
    settings: Settings, triton: EmbeddedTriton, data_dir: Path, tmp_path: Path
) -> None:
    security = SecuritySection(
        api_keys=[
            {"key_hash": hash_key(KEY_A), "name": "a"},  # type: ignore[list-item]
            {"key_hash": hash_key(KEY_B), "name": "b"},  # type: ignore[list-item]
        ],
        allow_localhost_unauthenticated=False,
    )
    own = own_data(tmp_path / "data", data_dir)
    with (
        own_frontend(settings, triton, security=security, data_dir=own) as api,
        api.client() as http,
    ):
        a, b = {"Authorization": f"Bearer {KEY_A}"}, {"Authorization": f"Bearer {KEY_B}"}
        created = http.post(
            "/api/embed", json={"texts": ["mine"]}, headers={**a, "Prefer": "respond-async"}
        )
        assert created.status_code == 202, created.text
        location = created.headers["Location"]
        assert wait_job(http, location, headers=a)["status"] == "succeeded"
        assert http.get(location, headers=b).status_code == 404
        assert http.delete(location, headers=b).status_code == 404
        assert http.get("/api/jobs", headers=b).json()["total"] == 0
        assert http.get("/api/jobs", headers=a).json()["total"] == 1
        assert http.get(location).status_code == 401  # no key at all


class Receiver:
    """A loopback webhook receiver answering 500 to the first `failures` POSTs."""

    def __init__(self, failures: int) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers)))
                code = 500 if len(receiver.received) <= failures else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_webhook_is_signed_and_retried_after_two_500s(http: httpx.Client) -> None:
    receiver = Receiver(failures=2)
    try:
        created = http.post(
            "/api/jobs",
            json={"endpoint": "/api/embed", "body": {"texts": ["ping"]}, "webhook": receiver.url},
        )
        assert created.status_code == 202, created.text
        location = created.headers["Location"]
        assert wait_job(http, location)["status"] == "succeeded"
        hook = wait_delivery(http, location)
        assert hook["delivered"] is True
        assert [a["status_code"] for a in hook["attempts"]] == [500, 500, 200]
        assert len(receiver.received) == 3
        body, headers = receiver.received[-1]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Homelab-Signature"] == expected
        payload = json.loads(body)
        assert payload["id"] == created.json()["id"] and payload["status"] == "succeeded"
        assert len(payload["result"]["embeddings"][0]) == 384
    finally:
        receiver.server.shutdown()


def wait_delivery(http: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hook = http.get(location).json()["webhook"]
        if hook["delivered"] is not None:
            return dict(hook)
        time.sleep(0.05)
    raise AssertionError("the webhook delivery did not end")


def test_a_webhook_that_always_fails_gives_up_after_the_attempts_without_blocking_jobs(
    http: httpx.Client,
) -> None:
    receiver = Receiver(failures=1000)
    try:
        body = {"endpoint": "/api/embed", "body": {"texts": ["x"]}, "webhook": receiver.url}
        hooked = [http.post("/api/jobs", json=body).headers["Location"] for _ in range(3)]
        # three deliveries retrying at once; the job workers (2) still run other jobs
        plain = http.post("/api/embed", json={"texts": ["unhooked"]}, headers=PREFER)
        assert wait_job(http, plain.headers["Location"], seconds=60)["status"] == "succeeded"
        for location in hooked:
            hook = wait_delivery(http, location)
            assert hook["delivered"] is False
            assert [a["attempt"] for a in hook["attempts"]] == [1, 2, 3, 4, 5]
            assert {a["status_code"] for a in hook["attempts"]} == {500}
            assert set(hook) == {"url", "attempts", "delivered"}
    finally:
        receiver.server.shutdown()


def test_a_webhook_delivery_cut_by_a_shutdown_resumes_at_the_next_start(
    settings: Settings, triton: EmbeddedTriton, data_dir: Path, tmp_path: Path
) -> None:
    receiver = Receiver(failures=1)
    own = own_data(tmp_path / "data", data_dir)
    crawl = settings.crawl.model_copy(update={"allowed_hosts": ["127.0.0.1"]})
    slow = {"webhook_secret": SECRET, "webhook_backoff_seconds": 600}  # waits after the 500
    body = {"endpoint": "/api/embed", "body": {"texts": ["x"]}, "webhook": receiver.url}
    try:
        jobs = settings.jobs.model_copy(update=slow)
        with (
            own_frontend(settings, triton, jobs=jobs, crawl=crawl, data_dir=own) as first,
            first.client() as http,
        ):
            location = http.post("/api/jobs", json=body).headers["Location"]
            assert wait_job(http, location)["status"] == "succeeded"
            deadline = time.monotonic() + 30
            while not http.get(location).json()["webhook"]["attempts"]:
                assert time.monotonic() < deadline, "no first delivery attempt"
                time.sleep(0.05)
        jobs = settings.jobs.model_copy(update={**slow, "webhook_backoff_seconds": 0.05})
        with (
            own_frontend(settings, triton, jobs=jobs, crawl=crawl, data_dir=own) as second,
            second.client() as http,
        ):
            hook = wait_delivery(http, location)
        assert hook["delivered"] is True
        assert [(a["attempt"], a["status_code"]) for a in hook["attempts"]] == [(1, 500), (2, 200)]
        assert len(receiver.received) == 2
    finally:
        receiver.server.shutdown()


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://10.1.2.3/hook", "private"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_a_webhook_to_a_refused_address_is_refused_when_the_job_is_created(
    http: httpx.Client, url: str, rule: str
) -> None:
    before = http.get("/api/jobs").json()["total"]
    response = http.post(
        "/api/jobs", json={"endpoint": "/api/embed", "body": {"texts": ["x"]}, "webhook": url}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and error["details"]["rule"] == rule
    via_header = http.post(
        "/api/embed",
        json={"texts": ["x"]},
        headers={"Prefer": "respond-async", "X-Homelab-Webhook": url},
    )
    assert via_header.status_code == 400 and via_header.json()["error"]["details"]["rule"] == rule
    assert http.get("/api/jobs").json()["total"] == before  # nothing was queued
