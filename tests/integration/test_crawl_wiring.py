"""The full app (create_app's lifespan) serves POST /api/crawl with the default policy."""

from __future__ import annotations

import httpx


def test_crawl_route_is_wired_with_the_default_policy(client: httpx.Client) -> None:
    response = client.post("/api/crawl", json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"] == {"rule": "link_local", "host": "169.254.169.254"}
    assert "/api/crawl" in client.get("/openapi.json").json()["paths"]
