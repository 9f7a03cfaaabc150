"""Failures map to documented codes; bad input gets the envelope, never internals."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawl.conftest import CrawlApi
from tests.crawl.site import SITE_HOST, Site, tls_listener


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server, port = tls_listener(Path(tmp_path_factory.mktemp("tls")))
    yield port
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((SITE_HOST, 0))
        return int(sock.getsockname()[1])


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    for internal in ("Traceback", "playwright", "net::", 'File "', "Error("):
        assert internal not in response.text
    return error


def test_unreachable_host(api: CrawlApi) -> None:
    error = _error(api.crawl(f"http://{SITE_HOST}:{_closed_port()}/"), 502, "CRAWL_UNREACHABLE")
    assert error["details"]["host"] == SITE_HOST


def test_dns_failure(api: CrawlApi, site: Site) -> None:
    _error(api.crawl("http://no-such-host.invalid/"), 502, "CRAWL_DNS_FAILED")
    # the same failure met by the browser, on a redirect hop (resolved in the proxy)
    error = _error(api.crawl(site.url("/to-nowhere")), 502, "CRAWL_DNS_FAILED")
    assert error["details"]["host"] == "no-such-host.invalid"


def test_tls_failure(api: CrawlApi, tls_port: int) -> None:
    error = _error(api.crawl(f"https://{SITE_HOST}:{tls_port}/"), 502, "CRAWL_TLS_FAILED")
    assert error["details"]["net_error"].startswith("ERR_CERT_")


def test_timeout_without_any_response(api: CrawlApi, site: Site) -> None:
    error = _error(api.crawl(site.url("/no-answer"), timeout_ms=1500), 504, "CRAWL_TIMEOUT")
    assert error["details"]["host"] == SITE_HOST


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 42}, "url"),
        ({"url": ""}, "url"),
        ({"url": "http://x/" + "a" * 5000}, "url"),
        ({"url": "http://x/", "screenshot": "yes"}, "screenshot"),
        ({"url": "http://x/", "wait_for_js": 1}, "wait_for_js"),
        ({"url": "http://x/", "timeout_ms": "fast"}, "timeout_ms"),
        ({"url": "http://x/", "timeout_ms": 1.5}, "timeout_ms"),
        ({"url": "http://x/", "timeout_ms": 0}, "timeout_ms"),
        ({"url": "http://x/", "timeout_ms": -5}, "timeout_ms"),
        ({"url": "http://x/", "cookies": "a=b"}, "cookies"),
        (["http://x/"], "body"),
    ],
)
def test_bad_input(api: CrawlApi, body: Any, field: str) -> None:
    with api.client() as http:
        response = http.post("/api/crawl", json=body)
    error = _error(response, 400, "INVALID_REQUEST")
    assert error["details"]["errors"][0]["field"] == field


def test_absurd_timeout_names_the_cap(api: CrawlApi, site: Site) -> None:
    error = _error(api.crawl(site.url("/article"), timeout_ms=10**12), 400, "INVALID_REQUEST")
    assert "crawl.max_timeout_ms" in error["message"]


def test_malformed_json(api: CrawlApi) -> None:
    with api.client() as http:
        response = http.post(
            "/api/crawl",
            content=b'{"url": "http://x/"',
            headers={"content-type": "application/json"},
        )
    error = _error(response, 400, "INVALID_REQUEST")
    assert error["message"] == "request body is not valid JSON"


def test_openapi_documents_crawl(api: CrawlApi) -> None:
    with api.client() as http:
        schema = http.get("/openapi.json").json()
    operation = schema["paths"]["/api/crawl"]["post"]
    assert {"400", "502", "503", "504"} <= set(operation["responses"])
    request = schema["components"]["schemas"]["CrawlRequest"]["properties"]
    assert {
        "url",
        "screenshot",
        "full_page",
        "wait_for_js",
        "timeout_ms",
        "markdown",
        "links",
        "html",
        "pdf",
        "only_main_content",
        "include_tags",
        "exclude_tags",
        "wait_for_selector",
        "wait_ms",
        "headers",
        "cookies",
        "user_agent",
        "mobile",
        "block_resources",
    } == set(request)
    assert all(prop.get("description") for prop in request.values())
    for path in ("/api/crawl/site", "/api/crawl/map"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"400", "502", "503"} <= set(responses), path
    site = schema["components"]["schemas"]["SiteCrawlRequest"]["properties"]
    assert all(prop.get("description") for prop in site.values())
    assert (
        "application/x-ndjson"
        in schema["paths"]["/api/crawl/site"]["post"]["responses"]["200"]["content"]
    )
    # Firecrawl's routes document Firecrawl's error shape
    scrape = schema["paths"]["/v2/scrape"]["post"]["responses"]
    assert scrape["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "FirecrawlErrorEnvelope"
    )
    assert "408" in scrape


MALFORMED_URLS = [
    "http://[::1",
    "http://[zz]/",
    "http://host:99999/",
    "http://a b/",
    "http:///path",
    "//no-scheme.example/",
    "http://%zz/",
    "http://user@/",
]
# (path, body for a URL): every route that takes URLs from the caller
URL_ROUTES: list[tuple[str, Any]] = [
    ("/api/crawl", lambda url: {"url": url}),
    ("/api/crawl/map", lambda url: {"url": url}),
    ("/api/crawl/site", lambda url: {"url": url}),
    ("/api/crawl/batch", lambda url: {"urls": [url]}),
    ("/v2/scrape", lambda url: {"url": url}),
    ("/v2/map", lambda url: {"url": url}),
    ("/v2/crawl", lambda url: {"url": url}),
    ("/v2/batch/scrape", lambda url: {"urls": [url], "ignoreInvalidURLs": False}),
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_malformed_urls_are_refused_on_every_route(api: CrawlApi, url: str) -> None:
    with api.client() as http:
        for path, body in URL_ROUTES:
            response = http.post(path, json=body(url))
            where = f"{path} {url}: {response.status_code} {response.text[:200]}"
            # a batch stream answers 200 and reports the page's 400 in its lines
            assert response.status_code in (200, 400), where
            assert "INVALID_REQUEST" in response.text, where
