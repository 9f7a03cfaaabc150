"""Failures map to documented codes; bad input gets the envelope, never internals."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontend.core.errors import InvalidRequest
from frontend.jobs import webhooks
from tests.crawl.conftest import CrawlApi, FakeDns
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
    "http://[fe80::1%25eth0]/",  # a zone id: no browser takes one
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
    ("/v1/scrape", lambda url: {"url": url}),
    ("/v1/map", lambda url: {"url": url}),
    ("/v1/crawl", lambda url: {"url": url}),
    ("/v1/batch/scrape", lambda url: {"urls": [url], "ignoreInvalidURLs": False}),
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


# Spellings a browser reads as a refused address (the test site's 127.0.0.2 is allowed, the
# rest of loopback is not): (URL, the rule, the host a browser connects to). Python's urlsplit
# reads several of them as another host (the `\\@` ones as 127.0.0.2, the allowed one).
P = 8  # any port: nothing is ever connected to
TRICKY_URLS: list[tuple[str, str, str]] = [
    (f"http://127.0.0.1:{P}\\@{SITE_HOST}:{P}/", "loopback", "127.0.0.1"),
    (f"http://127.0.0.1\\@{SITE_HOST}/", "loopback", "127.0.0.1"),
    (f"http://{SITE_HOST}@127.0.0.1/", "loopback", "127.0.0.1"),
    (f"http://user:pw@127.0.0.1:{P}/", "loopback", "127.0.0.1"),
    ("http:/\\127.0.0.1/", "loopback", "127.0.0.1"),
    ("http:\\\\127.0.0.1\\x", "loopback", "127.0.0.1"),
    ("http:///127.0.0.1/", "loopback", "127.0.0.1"),
    ("http://127.0.0.1\t/", "loopback", "127.0.0.1"),
    ("http://12\n7.0.0.1/", "loopback", "127.0.0.1"),
    (" \x01http://127.0.0.1/ ", "loopback", "127.0.0.1"),
    ("http://2130706433/", "loopback", "127.0.0.1"),
    ("http://0x7f.1/", "loopback", "127.0.0.1"),
    ("http://0177.0.0.1/", "loopback", "127.0.0.1"),
    ("http://127.1/", "loopback", "127.0.0.1"),
    ("http://%31%32%37.0.0.1/", "loopback", "127.0.0.1"),
    ("HTTP://127.0.0.1./", "loopback", "127.0.0.1"),
    ("http://[::1]/", "loopback", "::1"),
    ("http://[0:0:0:0:0:0:0:1]:80/", "loopback", "::1"),
    ("http://[::ffff:127.0.0.1]/", "loopback", "::ffff:7f00:1"),
    ("http://0x0a.0.0.1/", "private", "10.0.0.1"),
    ("http://169.254.169.254/", "link_local", "169.254.169.254"),
    ("hTtPs://0xA9FEA9FE/", "link_local", "169.254.169.254"),
    ("http://0/", "unspecified", "0.0.0.0"),
]


def _refusal(http: httpx.Client, path: str, response: httpx.Response) -> dict[str, Any]:
    """The refusal a route answered, whatever its shape: our envelope, Firecrawl's, the error
    of a page in a batch stream, or of a page in a Firecrawl batch job."""
    if response.headers.get("content-type", "").startswith("application/x-ndjson"):
        lines = [json.loads(line) for line in response.text.splitlines() if line]
        pages = [line["page"] for line in lines if line["type"] == "page"]
        assert len(pages) == 1, response.text[:300]
        return dict(pages[0]["error"])
    body = response.json()
    if path.endswith("/batch/scrape") and body.get("success") is True:
        return _job_error(http, f"{path}/{body['id']}/errors")
    assert response.status_code == 400, f"{path}: {response.status_code} {response.text[:300]}"
    if path.startswith(("/v1/", "/v2/")):  # Firecrawl's shape
        assert body["success"] is False
        return {"code": body["code"], "message": body["error"], "details": body["details"]}
    return dict(body["error"])


def _job_error(http: httpx.Client, errors_path: str) -> dict[str, Any]:
    """The one page error of a Firecrawl batch job, once it is there (bounded wait)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        errors = http.get(errors_path).json()["errors"]
        if errors:
            assert len(errors) == 1, errors
            return {"code": errors[0]["code"], "message": errors[0]["error"]}
        time.sleep(0.1)
    raise AssertionError(f"{errors_path}: no error after 60 s")


@pytest.mark.parametrize(("url", "rule", "host"), TRICKY_URLS)
def test_every_route_reads_a_url_as_the_browser_does(
    api: CrawlApi, fake_dns: FakeDns, url: str, rule: str, host: str
) -> None:
    messages = set()
    with api.client() as http:
        for path, body in [*URL_ROUTES, ("/api/crawl/batch", lambda url: {"urls": [url]})]:
            refusal = _refusal(http, path, http.post(path, json=body(url)))
            assert refusal["code"] == "INVALID_REQUEST", (path, refusal)
            if "details" in refusal:
                assert (refusal["details"]["rule"], refusal["details"]["host"]) == (rule, host)
            messages.add(refusal["message"])
    assert len(messages) == 1, messages  # one refusal, word for word, on every route
    assert f"{host} is " in messages.pop()
    # webhooks: the check a job's creation and every delivery make
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(webhooks.check_target(api.service.policy, fake_dns, url))
    assert refused.value.details["rule"] == rule


def test_the_browser_reading_of_an_allowed_host_is_the_one_crawled(
    api: CrawlApi, site: Site
) -> None:
    """A spelling a browser reads as the allowed test site loads it, on every route (the URL
    crawled is the browser's reading, not the string sent)."""
    url = f"HTTP://{SITE_HOST}:{site.port}\\article"
    with api.client() as http:
        page = http.post("/api/crawl", json={"url": url})
        assert page.status_code == 200, page.text
        assert page.json()["url"] == site.url("/article")
        mapped = http.post("/api/crawl/map", json={"url": url, "sitemap": "skip"})
        assert mapped.status_code == 200, mapped.text
        assert mapped.json()["links"][0]["url"] == site.url("/article")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/crawl/site", {"page": {"include_tags": ["main", "div[", "p:nth-child(2n"]}}),
        ("/api/crawl/site", {"page": {"exclude_tags": [".ad >> .x"]}}),
        ("/v2/crawl", {"scrapeOptions": {"includeTags": ["div["]}}),
        ("/v1/crawl", {"scrapeOptions": {"excludeTags": ["##"]}}),
    ],
)
def test_a_site_crawl_with_an_invalid_selector_is_refused_before_it_starts(
    api: CrawlApi, site: Site, path: str, body: dict[str, Any]
) -> None:
    with api.client() as http:
        response = http.post(path, json={"url": site.url("/article"), **body})
    assert response.status_code == 400, response.text
    assert "INVALID_REQUEST" in response.text and "not a valid CSS selector" in response.text
    assert not response.headers["content-type"].startswith("application/x-ndjson")


def test_selectors_chromium_takes_are_accepted_by_a_site_crawl(api: CrawlApi, site: Site) -> None:
    """The check is Chromium's own parser (the one that applies them): what it takes passes,
    :has(), :is(), attribute flags and pseudo-elements included."""
    selectors = ["main :is(h1, p)", "article:has(> h1)", "a[href$='.PDF' i]", "p::first-line"]
    with api.client() as http:
        response = http.post(
            "/api/crawl/site",
            json={"url": site.url("/article"), "max_depth": 0, "page": {"include_tags": selectors}},
        )
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines[-1]["type"] == "summary" and lines[-1]["done"] == 1, lines[-1]
