"""CORS for web pages calling the API from a browser: off by default, and when origins are
configured, preflights answered before the key check and every answer (errors too) readable by
the allowed page only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from frontend.core.config import ServerSection, Settings
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.integration.fixtures import RunningApi
from tests.integration.test_security import KEY_A, bearer, section

PAGE = "https://app.example.com"
EMBED = {"texts": ["from a web page"]}
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.fixture(scope="module")
def cors_api(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    server = settings.server.model_copy(update={"cors_allow_origins": [PAGE]})
    with own_frontend(settings, triton, server=server, security=section()) as api:
        yield api


def test_preflight_is_answered_without_a_key(cors_api: RunningApi) -> None:
    with cors_api.client() as http:
        response = http.options("/api/embed", headers=PREFLIGHT)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "POST" in response.headers["access-control-allow-methods"]


def test_answers_and_errors_are_readable_by_the_allowed_page(cors_api: RunningApi) -> None:
    with cors_api.client() as http:
        ok = http.post("/api/embed", json=EMBED, headers={"Origin": PAGE, **bearer(KEY_A)})
        refused = http.post("/api/embed", json=EMBED, headers={"Origin": PAGE})
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == PAGE
    exposed = ok.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "x-ratelimit-remaining" in exposed
    assert refused.status_code == 401  # the key check still holds for the real request
    assert refused.headers["access-control-allow-origin"] == PAGE


def test_other_pages_get_no_cors_headers(cors_api: RunningApi) -> None:
    other = {**PREFLIGHT, "Origin": "https://evil.example.net"}
    with cors_api.client() as http:
        preflight = http.options("/api/embed", headers=other)
        answer = http.post(
            "/api/embed", json=EMBED, headers={**bearer(KEY_A), "Origin": other["Origin"]}
        )
    assert preflight.status_code == 400
    assert preflight.json()["error"]["code"] == "INVALID_REQUEST"
    assert preflight.json()["error"]["request_id"] == preflight.headers["x-request-id"]
    assert "access-control-allow-origin" not in preflight.headers
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_off_by_default(client: httpx.Client) -> None:
    preflight = client.options("/api/embed", headers=PREFLIGHT)
    assert preflight.status_code == 405
    answer = client.post("/api/embed", json=EMBED, headers={"Origin": PAGE})
    assert "access-control-allow-origin" not in answer.headers


def test_origins_are_checked_and_read_from_the_environment() -> None:
    assert ServerSection(
        cors_allow_origins="https://a.lan, http://b.lan:8080/"
    ).cors_allow_origins == [  # type: ignore[arg-type]
        "https://a.lan",
        "http://b.lan:8080",
    ]
    assert ServerSection(cors_allow_origins=["*"]).cors_allow_origins == ["*"]
    with pytest.raises(ValidationError, match="not an origin"):
        ServerSection(cors_allow_origins=["app.example.com/path"])
