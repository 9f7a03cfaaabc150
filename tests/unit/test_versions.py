"""One handler at several API versions' paths: each route parses its own body, passes its
version, and keeps its own operation id and summary."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

from frontend.core.errors import json_response
from frontend.core.versions import add_versioned_routes


class Body(BaseModel):
    text: str


class Answer(BaseModel):
    text: str
    version: str


async def echo(body: Body, request: Request, version: str) -> Response:
    return json_response({"text": body.text, "version": version, "path": request.url.path})


def _app() -> FastAPI:
    router = APIRouter()
    add_versioned_routes(
        router,
        echo,
        Answer,
        ("/v2/echo", "2", "echo_v2", "Echo, v2"),
        ("/v1/echo", "1", "echo_v1", "Echo, v1"),
    )
    app = FastAPI()
    app.include_router(router)
    return app


def test_each_route_gets_its_version_and_its_own_body() -> None:
    client = TestClient(_app())
    for version in ("1", "2"):
        answer = client.post(f"/v{version}/echo", json={"text": "hi"})
        assert answer.json() == {"text": "hi", "version": version, "path": f"/v{version}/echo"}
    assert client.post("/v1/echo", json={"other": 1}).status_code == 422  # the body is parsed


def test_each_route_keeps_its_operation_id_and_summary() -> None:
    spec = _app().openapi()
    for version in ("1", "2"):
        operation = spec["paths"][f"/v{version}/echo"]["post"]
        assert operation["operationId"] == f"echo_v{version}_v{version}_echo_post"
        assert operation["summary"] == f"Echo, v{version}"
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Body"}
        assert "version" not in str(operation.get("parameters", []))
