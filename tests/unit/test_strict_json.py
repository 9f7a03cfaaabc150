"""Request bodies: what strict JSON cannot carry is a 400 naming the field; the OpenAPI schema
documents every status the middleware and the routes can answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from frontend.app import ROUTERS, create_app
from frontend.core.config import load_settings
from frontend.core.jsonbody import InvalidBody, StrictJSONRoute, decode_json
from frontend.core.probes import PROBE_PATHS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"texts": ["ok", "a\\ud800b"]}', "texts.1"),
        (b'{"texts": ["\\udfff"]}', "texts.0"),
        (b'{"keep_alive": NaN}', "keep_alive"),
        (b'{"keep_alive": Infinity}', "keep_alive"),
        (b'{"keep_alive": -Infinity}', "keep_alive"),
        (b'{"keep_alive": 1e999}', "keep_alive"),
        (b'{"options": {"x": [1, -1e400]}}', "options.x.1"),
        (b'{"a\\ud800": 1}', "body"),
    ],
)
def test_unrepresentable_values_are_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        decode_json(body)
    assert caught.value.status_code == 400
    assert caught.value.details["errors"][0]["field"] == field
    assert field in str(caught.value.detail)


@pytest.mark.parametrize("body", [b"[" * 100_000, b"{", b"\xff", '{"a": 1}'.encode("utf-16"), b""])
def test_bodies_that_are_not_json_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidBody, match="not valid JSON"):
        decode_json(body)


def test_valid_json_decodes_as_it_is() -> None:
    body = '{"texts": ["héllo 🌍", "\\ud83c\\udf0d"], "n": 1e308, "big": 99999999999999999999}'
    assert decode_json(body.encode()) == {
        "texts": ["héllo 🌍", "🌍"],
        "n": 1e308,
        "big": 1e20,
    }


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app(load_settings(None)).openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in schema["paths"].items() for m, op in ops.items()]


def test_every_api_route_parses_its_body_strictly() -> None:
    routes = [route for router in ROUTERS for route in router.routes]
    api_routes = [r for r in routes if isinstance(r, APIRoute) and r.path.startswith("/api/")]
    assert api_routes
    assert all(isinstance(route, StrictJSONRoute) for route in api_routes)


def test_protected_operations_document_the_security_statuses(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        # validation errors are 400; only Immich's /predict answers 422, as Immich's server does
        assert ("422" in codes) == (path == "/predict"), (method, path)
        assert "500" in codes, (method, path)
        if path in PROBE_PATHS:  # /health, /ready and Weaviate's /.well-known/live, /ready
            assert "400" not in codes  # probes are exempt from the Host check
            continue
        assert {"400", "403"} <= codes, (method, path)
        if path.startswith("/api/"):
            assert operation["security"] == [{"apiKey": []}]
            assert {"401", "429"} <= codes, (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
        if "requestBody" in operation:
            assert "413" in codes, (method, path)


def test_route_specific_statuses_are_documented_with_the_envelope(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert "409" in paths["/api/models"]["post"]["responses"]
    assert "409" in paths["/api/models/{model_id}"]["delete"]["responses"]
    assert {"404", "503"} <= set(paths["/api/embed"]["post"]["responses"])
    assert {"502", "503", "504"} <= set(paths["/api/crawl"]["post"]["responses"])
    assert "503" in paths["/ready"]["get"]["responses"]
    conflict = paths["/api/models"]["post"]["responses"]["409"]
    envelope = conflict["content"]["application/json"]["schema"]
    assert envelope == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
