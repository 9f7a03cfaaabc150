"""API keys, the IP allowlist, rate limits, Triton's restricted repository API, metrics and the
access log, over real HTTP in front of the session's real Triton."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from frontend.app import create_app
from frontend.compat.firecrawl_errors import is_firecrawl_path
from frontend.compat.ollama_models import OLLAMA_PATHS
from frontend.core.config import SecuritySection, Settings
from frontend.core.security import Security, hash_key
from frontend.triton.embedded import EmbeddedTriton
from tests.integration.conftest import ADMIN_KEY, serve_app

KEY_A = "hlai_key-for-app-a-0123456789"
KEY_B = "hlai_key-for-app-b-0123456789"
REVOKED = "hlai_revoked-key-0123456789"


def section(**overrides: Any) -> SecuritySection:
    data: dict[str, Any] = {
        "api_keys": [
            {"key_hash": hash_key(KEY_A), "name": "app-a"},
            {"key_hash": hash_key(KEY_B), "name": "app-b"},
            {"key_hash": hash_key(REVOKED), "name": "old", "revoked": True},
        ],
        "rate_limit": {"per_key": "10000/minute", "per_ip": "10000/minute"},
    }
    data.update(overrides)
    return SecuritySection(**data)


@pytest.fixture(scope="module")
def secured(settings: Settings, triton: EmbeddedTriton) -> Iterator[tuple[FastAPI, str]]:
    """A frontend of its own over the shared Triton; tests swap its security settings."""
    own = settings.model_copy(
        update={"triton": settings.triton.model_copy(update={"url": triton.grpc_url})}
    )
    app = create_app(own)
    server, thread, url = serve_app(app)
    yield app, url
    server.should_exit = True
    thread.join(30)


def use(app: FastAPI, **overrides: Any) -> None:
    app.state.security = Security(section(**overrides))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation the app serves, from its own OpenAPI schema."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            routes.append((method.upper(), concrete(path)))
    return routes


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# (case, security overrides, headers, expected status: None = "passes security")
CASES: list[tuple[str, dict[str, Any], dict[str, str], int | None]] = [
    ("no header", {}, {}, 401),
    ("wrong scheme", {}, {"Authorization": f"Basic {KEY_A}"}, 401),
    ("wrong key", {}, bearer("hlai_not-a-key"), 401),
    ("revoked key", {}, bearer(REVOKED), 401),
    ("right key", {}, bearer(KEY_A), None),
    ("localhost bypass on", {"allow_localhost_unauthenticated": True}, {}, None),
    ("localhost bypass off", {"allow_localhost_unauthenticated": False}, {}, 401),
    (
        "allowlisted client via trusted proxy",
        {"ip_allowlist": ["10.0.0.0/8"], "trusted_proxies": ["127.0.0.1"]},
        {**bearer(KEY_A), "X-Forwarded-For": "10.1.2.3"},
        None,
    ),
    (
        "non-allowlisted client via trusted proxy",
        {"ip_allowlist": ["10.0.0.0/8", "::1"], "trusted_proxies": ["127.0.0.1"]},
        {**bearer(KEY_A), "X-Forwarded-For": "192.168.9.9"},
        403,
    ),
    (
        "spoofed X-Forwarded-For from an untrusted peer",
        {"ip_allowlist": ["10.0.0.0/8"]},
        {**bearer(KEY_A), "X-Forwarded-For": "10.1.2.3"},
        403,
    ),
    (
        "remote client behind a local proxy gets no localhost bypass",
        {"allow_localhost_unauthenticated": True, "trusted_proxies": ["127.0.0.1"]},
        {"X-Forwarded-For": "203.0.113.5"},
        401,
    ),
    (
        "IPv6 allowlist entry",
        {"ip_allowlist": ["2001:db8::/32"], "trusted_proxies": ["127.0.0.1"]},
        {**bearer(KEY_A), "X-Forwarded-For": "2001:db8::7"},
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "overrides", "headers", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_every_protected_route(
    secured: tuple[FastAPI, str],
    case: str,
    overrides: dict[str, Any],
    headers: dict[str, str],
    expected: int | None,
) -> None:
    app, url = secured
    use(app, **overrides)
    routes = api_routes(app)
    protected = [(m, p) for m, p in routes if not app.state.security.policy.is_open(p, m)]
    assert ("POST", "/api/embed") in protected and ("DELETE", "/api/models/x") in protected
    # ours under /api/, OpenAI's and Cohere's under /v1/ and /v2/, TEI's and Infinity's at the root
    root = {"/embed", "/rerank", "/info", "/", "/embeddings", "/models", "/tika", "/tika/text"}
    root |= {"/process", "/vectors", "/vectors/", "/meta"}  # Open WebUI's, Weaviate's
    handlers = ("", "/xml", "/html", "/text", "/ignore")
    root |= {f"{under}/rmeta{h}" for under in ("", "/tika") for h in handlers}  # Tika's
    root |= {"/predict"}  # Immich's machine-learning API (its /ping is an open probe)
    assert all(p.startswith(("/api/", "/v1/", "/v2/")) or p in root for _, p in protected)
    assert ("POST", "/") in protected and ("GET", "/") not in protected  # TEI's, the admin page
    assert len(protected) >= 15
    with httpx.Client(base_url=url, timeout=60) as client:
        for method, path in protected:
            response = client.request(method, path, headers=headers)
            where = f"{case}: {method} {path} -> {response.status_code} {response.text[:200]}"
            if expected is None:
                assert response.status_code not in (401, 403, 500), where
            else:
                assert response.status_code == expected, where
                code = {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[expected]
                if is_firecrawl_path(path):  # Firecrawl's error shape
                    body = response.json()
                    assert body["success"] is False and body["code"] == code, where
                elif path in OLLAMA_PATHS:  # Ollama's: {"error": message}
                    assert list(response.json()) == ["error"], where
                    assert isinstance(response.json()["error"], str), where
                else:
                    error = response.json()["error"]
                    # OpenAI's error shape under /v1/ (lower-case codes)
                    assert error["code"] == (code.lower() if path.startswith("/v1/") else code)
                assert KEY_A not in response.text
                if expected == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_probes_docs_and_metrics_stay_open(secured: tuple[FastAPI, str]) -> None:
    app, url = secured
    use(app, ip_allowlist=["10.0.0.0/8"])
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/metrics").status_code == 403  # the allowlist covers all but probes
        use(app)
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        use(app, metrics_require_auth=True)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(KEY_B)).status_code == 200


def test_a_foreign_host_is_refused_before_auth(secured: tuple[FastAPI, str]) -> None:
    app, url = secured
    use(app)
    with httpx.Client(base_url=url, timeout=60) as client:
        for headers in ({}, bearer(KEY_A)):  # no key or a good one: the Host check comes first
            response = client.get("/api/status", headers={**headers, "Host": "rebound.example"})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "INVALID_REQUEST"
        assert client.get("/api/status", headers=bearer(KEY_A)).status_code == 200


def test_rate_limit_per_key(secured: tuple[FastAPI, str]) -> None:
    app, url = secured
    use(app, rate_limit={"per_key": "5/minute", "per_ip": "3/minute"})
    with httpx.Client(base_url=url, timeout=60) as client:
        statuses = [client.get("/api/downloads", headers=bearer(KEY_A)) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200] * 5 + [429]
        assert statuses[0].headers["X-RateLimit-Limit"] == "5"
        assert statuses[0].headers["X-RateLimit-Remaining"] == "4"
        refused = statuses[-1]
        assert refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert client.get("/api/downloads", headers=bearer(KEY_B)).status_code == 200  # unaffected
        use(
            app,
            allow_localhost_unauthenticated=True,
            rate_limit={"per_key": "5/minute", "per_ip": "3/minute"},
        )
        by_ip = [client.get("/api/downloads").status_code for _ in range(4)]
        assert by_ip == [200, 200, 200, 429]


def test_triton_repository_api_needs_the_admin_key(
    client: httpx.Client, triton: EmbeddedTriton
) -> None:
    assert client.post("/api/embed", json={"texts": ["warm"], "model": "minilm"}).status_code == 200
    direct = grpcclient.InferenceServerClient(triton.grpc_url)
    for headers in (None, {"triton-grpc-protocol-admin-key": "wrong-key-0123456789"}):
        with pytest.raises(InferenceServerException, match="restricted"):
            direct.unload_model("minilm", headers=headers)
        with pytest.raises(InferenceServerException, match="restricted"):
            direct.load_model("rapidocr", headers=headers)
    assert direct.is_model_ready("minilm")  # nothing was unloaded
    text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"power users infer directly"]], dtype=np.object_))
    result = direct.infer("minilm", [text])  # inference needs no key
    assert result.as_numpy("EMBEDDING").shape == (1, 384)
    assert ADMIN_KEY not in (triton.work_dir / "tritonserver.log").read_text(errors="replace")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_and_access_log_after_a_known_sequence(
    settings: Settings, triton: EmbeddedTriton, caplog: pytest.LogCaptureFixture
) -> None:
    own = settings.model_copy(
        deep=True, update={"triton": settings.triton.model_copy(update={"url": triton.grpc_url})}
    )
    own.security = section(allow_localhost_unauthenticated=False)
    app = create_app(own)
    server, thread, url = serve_app(app)
    caplog.set_level(logging.INFO, logger="homelab_ai.access")
    try:
        with httpx.Client(base_url=url, timeout=120, headers=bearer(KEY_A)) as client:
            for _ in range(3):
                body = {"texts": ["a secret sentence"], "model": "minilm"}
                assert client.post("/api/embed", json=body).status_code == 200
            assert client.post("/api/embed", json={"texts": []}).status_code == 400
            for _ in range(2):
                assert client.get("/api/models/minilm").status_code == 200
            assert client.get("/no/such/page").status_code == 404
            assert (
                client.get("/api/status", headers={"Authorization": "Bearer nope"}).status_code
                == 401
            )
            text = client.get("/metrics").text
    finally:
        server.should_exit = True
        thread.join(30)
    found = samples(text)

    def value(name: str, **labels: str) -> float:
        return found.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("api_requests_total", endpoint="/api/embed", status="200") == 3
    assert value("api_requests_total", endpoint="/api/embed", status="400") == 1
    assert value("api_requests_total", endpoint="/api/models/{model_id:path}", status="200") == 2
    assert value("api_requests_total", endpoint="unmatched", status="404") == 1
    assert value("api_requests_total", endpoint="/api/status", status="401") == 1
    assert value("api_request_duration_seconds_count", endpoint="/api/embed") == 4
    assert value("model_inference_duration_seconds_count", model="minilm") == 3
    assert value("model_load_duration_seconds_count", model="minilm") == 1
    assert value("models_loaded", model="minilm") == 1
    assert value("active_requests") == 0
    assert not any("/no/such/page" in str(key) for key in found)  # templates, never raw paths

    lines = [r.getMessage() for r in caplog.records if r.name == "homelab_ai.access"]
    pattern = re.compile(
        r"^\d{4}-\d\d-\d\dT[\d:.]+\+00:00 \| [0-9a-f-]{36} \| 127\.0\.0\.1 \| "
        r"(GET|POST) (\S+) \| (\d{3}) \| \d+\.\d \| (\S+)$"
    )
    parsed = [pattern.match(line) for line in lines]
    assert all(parsed), lines
    embeds = [m.groups() for m in parsed if m and m.group(2) == "/api/embed"]
    assert embeds.count(("POST", "/api/embed", "200", "minilm")) == 3
    assert ("POST", "/api/embed", "400", "-") in embeds
    assert not any(KEY_A in line or "secret sentence" in line for line in lines)
