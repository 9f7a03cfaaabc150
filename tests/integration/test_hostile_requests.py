"""Parseable but hostile requests get a 400 naming the problem (never a 500), and a Host header
that names another site is refused (DNS rebinding), over real HTTP on the session's Triton."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.images import b64, encode, render_text


def refused(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["request_id"] == response.headers["X-Request-ID"]
    if field is not None:
        assert field in error["message"]
        assert error["details"]["errors"][0]["field"] == field
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"texts": ["fine", "a\\ud800b"]}', "texts.1"),
        (b'{"texts": ["x"], "keep_alive": NaN}', "keep_alive"),
        (b'{"texts": ["x"], "keep_alive": Infinity}', "keep_alive"),
        (b'{"texts": ["x"], "keep_alive": -Infinity}', "keep_alive"),
        (b'{"texts": ["x"], "keep_alive": 1e999}', "keep_alive"),
        (b'{"texts": ["x"], "model": "\\udc00"}', "model"),
    ],
)
def test_embed_refuses_what_strict_json_cannot_carry(
    client: httpx.Client, body: bytes, field: str
) -> None:
    headers = {"Content-Type": "application/json"}
    refused(client.post("/api/embed", content=body, headers=headers), field)


def test_deeply_nested_json_is_a_400(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    refused(client.post("/api/embed", content=b"[" * 50_000, headers=headers))


def test_image_routes_parse_json_as_strictly(client: httpx.Client) -> None:
    image = b64(encode(render_text(["Hi"], (60, 30))))
    body = f'{{"image": "{image}", "keep_alive": NaN}}'.encode()
    headers = {"Content-Type": "application/json"}
    refused(client.post("/api/caption", content=body, headers=headers), "keep_alive")
    surrogate = b'{"image": "\\ud800"}'
    refused(client.post("/api/ocr", content=surrogate, headers=headers), "image")


@pytest.mark.parametrize("keep_alive", ["9" * 400, "NaN", "inf", "1e999"])
def test_form_fields_that_are_no_finite_duration_are_a_400(
    client: httpx.Client, keep_alive: str
) -> None:
    files = {"image": ("a.png", encode(render_text(["Hi"], (60, 30))), "image/png")}
    response = client.post("/api/ocr", files=files, data={"keep_alive": keep_alive})
    refused(response, "keep_alive")


@pytest.mark.parametrize("path", ["/api/status", "/api/models", "/admin", "/docs", "/metrics"])
def test_a_foreign_host_is_refused_everywhere_but_the_probes(
    client: httpx.Client, path: str
) -> None:
    error = refused(client.get(path, headers={"Host": "attacker.example:8000"}))
    assert "attacker.example" in error["message"]
    assert "server.allowed_hosts" in error["message"]
    assert client.get(path, headers={"Host": "localhost:8000"}).status_code in (200, 307)


def test_probes_answer_any_host(client: httpx.Client) -> None:
    # Kubernetes sends the pod IP, Docker health checks a service name: no data either way.
    assert client.get("/health", headers={"Host": "frontend:8000"}).status_code == 200
    assert client.get("/ready", headers={"Host": "10.1.2.3:8000"}).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/api/status", "/v1/models", "/admin"])
def test_head_gets_what_get_gets_without_the_body(client: httpx.Client, path: str) -> None:
    """`wget --spider` health checks and uptime monitors send HEAD."""
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["x-request-id"]


def test_head_on_a_post_route_is_405_in_the_envelope(client: httpx.Client) -> None:
    response = client.head("/api/embed")
    assert response.status_code == 405 and response.content == b""
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/jobs", "offset"),
        ("/api/jobs", "limit"),
        ("/api/jobs/x/items", "offset"),
        ("/v2/crawl/x", "skip"),
        ("/v2/batch/scrape/x", "skip"),
    ],
)
def test_huge_paging_numbers_are_a_400_not_a_database_error(
    client: httpx.Client, path: str, name: str
) -> None:
    response = client.get(path, params={name: "9" * 40})
    assert response.status_code == 400, response.text
