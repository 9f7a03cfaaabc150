"""Every bad input and failure of /api/embed gets the documented envelope and status."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from frontend.app import create_app
from frontend.core.config import Settings
from frontend.triton.embedded import EmbeddedTriton, free_port
from tests.integration.conftest import RunningApi, concurrent_posts, serve_app, triton_log_count

LEAKS = ("Traceback", "/tmp/", "/root/", "site-packages", 'File "', "pytest-of")

# (case id, request kwargs, status, code)
CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed JSON", {"content": b'{"texts": ["a",', "json_ct": True}, 400, "INVALID_REQUEST"),
    ("not JSON at all", {"content": b"texts=hello", "json_ct": True}, 400, "INVALID_REQUEST"),
    ("empty body", {"content": b"", "json_ct": True}, 400, "INVALID_REQUEST"),
    ("JSON array body", {"json": ["hello"]}, 400, "INVALID_REQUEST"),
    ("missing texts", {"json": {"model": "minilm"}}, 400, "INVALID_REQUEST"),
    ("texts is a string", {"json": {"texts": "hello"}}, 400, "INVALID_REQUEST"),
    ("texts is null", {"json": {"texts": None}}, 400, "INVALID_REQUEST"),
    ("empty texts", {"json": {"texts": []}}, 400, "INVALID_REQUEST"),
    ("number in texts", {"json": {"texts": ["ok", 5]}}, 400, "INVALID_REQUEST"),
    ("null in texts", {"json": {"texts": [None]}}, 400, "INVALID_REQUEST"),
    ("nested list in texts", {"json": {"texts": [["a"]]}}, 400, "INVALID_REQUEST"),
    ("empty string", {"json": {"texts": ["ok", ""]}}, 400, "INVALID_REQUEST"),
    ("whitespace string", {"json": {"texts": ["  \n\t"]}}, 400, "INVALID_REQUEST"),
    ("too many texts", {"json": {"texts": ["a"] * 101}}, 400, "INVALID_REQUEST"),
    ("text too long", {"json": {"texts": ["x" * 2001]}}, 400, "INVALID_REQUEST"),
    ("model not a string", {"json": {"texts": ["a"], "model": 3}}, 400, "INVALID_REQUEST"),
    ("unknown field", {"json": {"texts": ["a"], "inputs": ["b"]}}, 400, "INVALID_REQUEST"),
    ("body over the limit", {"json": {"texts": ["y" * 40_000] * 110}}, 413, "INVALID_REQUEST"),
    ("unknown model", {"json": {"texts": ["a"], "model": "nope"}}, 404, "MODEL_NOT_FOUND"),
    ("path trick model", {"json": {"texts": ["a"], "model": "../../etc"}}, 404, "MODEL_NOT_FOUND"),
    ("disabled model", {"json": {"texts": ["a"], "model": "hidden"}}, 404, "MODEL_NOT_FOUND"),
    ("not downloaded", {"json": {"texts": ["a"], "model": "ghost"}}, 503, "MODEL_LOAD_FAILED"),
    ("fails to load", {"json": {"texts": ["a"], "model": "broken"}}, 503, "MODEL_LOAD_FAILED"),
]


def send(client: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    if "json" in request:
        return client.post("/api/embed", json=request["json"])
    return client.post(
        "/api/embed", content=request["content"], headers={"content-type": "application/json"}
    )


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    for leak in LEAKS:
        assert leak not in response.text
    return dict(error)


@pytest.mark.parametrize(
    ("request_", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_the_envelope(
    client: httpx.Client, request_: dict[str, Any], status: int, code: str
) -> None:
    assert_envelope(send(client, request_), status, code)
    # and the service still answers afterwards
    assert client.post("/api/embed", json={"texts": ["still fine"]}).status_code == 200


def test_unknown_model_lists_available_models(client: httpx.Client) -> None:
    error = assert_envelope(
        client.post("/api/embed", json={"texts": ["a"], "model": "nope"}), 404, "MODEL_NOT_FOUND"
    )
    assert error["details"]["model_id"] == "nope"
    assert error["details"]["available_models"] == ["minilm", "ghost", "broken", "minilm-brief"]


def test_not_downloaded_says_how_to_get_it(client: httpx.Client) -> None:
    error = assert_envelope(
        client.post("/api/embed", json={"texts": ["a"], "model": "ghost"}), 503, "MODEL_LOAD_FAILED"
    )
    assert "homelab-ai models import" in error["message"]
    assert error["details"]["hf_model"] == "nobody/not-downloaded"


def test_concurrent_requests_share_one_failed_load(api: RunningApi, triton: EmbeddedTriton) -> None:
    attempts_before = triton_log_count(triton, "failed to load 'broken' version 1")
    responses = concurrent_posts(api, [{"texts": ["a"], "model": "broken"}] * 6)
    for response in responses:
        assert_envelope(response, 503, "MODEL_LOAD_FAILED")
    assert triton_log_count(triton, "failed to load 'broken' version 1") - attempts_before == 1
    with api.client() as http:  # one broken model leaves the service ready for the others
        assert http.get("/ready").status_code == 200


def test_validation_errors_never_echo_input(client: httpx.Client) -> None:
    secret = "sk-do-not-echo-" + "z" * 40
    response = client.post("/api/embed", json={"texts": [secret, 7]})
    assert_envelope(response, 400, "INVALID_REQUEST")
    assert secret not in response.text
    assert "texts.1" in response.json()["error"]["message"]


def test_body_limit_applies_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"texts": ["'
        for _ in range(4200):
            yield b"x" * 1024
        yield b'"]}'

    response = client.post(
        "/api/embed", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/nothing-here", 404, "NOT_FOUND"),
        ("GET", "/api/embed", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_routing_errors_use_the_envelope(
    client: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    assert_envelope(client.request(method, path), status, code)


def test_triton_down_gives_503_and_not_ready(settings: Settings) -> None:
    dead = settings.triton.model_copy(update={"url": f"127.0.0.1:{free_port()}"})
    app = create_app(settings.model_copy(update={"triton": dead}))
    server, thread, url = serve_app(app)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/health").status_code == 200
            ready = http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not_ready"
            response = http.post("/api/embed", json={"texts": ["a"]})
            assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
            assert "retry" in json.loads(response.text)["error"]["message"]
    finally:
        server.should_exit = True
        thread.join(30)
