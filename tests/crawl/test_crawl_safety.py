"""The default address policy: refused targets, redirect hops, subresources and DNS rebinding,
with a listener on the loopback port that must never see a connection."""

from __future__ import annotations

import time

import pytest

from tests.crawl.conftest import CrawlApi, FakeDns
from tests.crawl.site import Listener, Site


def _assert_refused(response_json: dict[str, object], rule: str) -> None:
    error = response_json["error"]
    assert isinstance(error, dict)
    assert error["code"] == "INVALID_REQUEST"
    assert error["message"].startswith("crawl target refused: ")
    assert error["details"]["rule"] == rule


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:{trap}/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[::1]:{trap}/", "loopback"),
        ("http://2130706433:{trap}/", "loopback"),
        ("http://0x7f.1:{trap}/", "loopback"),
        ("http://[::ffff:127.0.0.1]:{trap}/", "loopback"),
        ("http://localhost:{trap}/", "loopback"),
        ("http://0.0.0.0:{trap}/", "unspecified"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://metadata.test/", "link_local"),
        ("http://mixed.test:{trap}/", "loopback"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.org/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/html,<p>hi</p>", "scheme"),
        ("chrome://version", "scheme"),
        ("http://:80/", "invalid_url"),  # no host (http:///x is host x to a browser)
        ("http:///127.0.0.1:{trap}/", "loopback"),
        ("http://example.org:99999/", "invalid_url"),
    ],
)
def test_refused_before_the_browser(api: CrawlApi, trap: Listener, url: str, rule: str) -> None:
    response = api.crawl(url.format(trap=trap.port))
    assert response.status_code == 400, response.text
    _assert_refused(response.json(), rule)
    assert trap.hits == 0


def test_redirect_to_loopback_is_refused(api: CrawlApi, site: Site, trap: Listener) -> None:
    for path in ("/to-trap", "/to-trap-by-name"):
        response = api.crawl(site.url(path))
        assert response.status_code == 400, response.text
        _assert_refused(response.json(), "loopback")
    assert trap.hits == 0


def test_subresources_on_loopback_are_refused(api: CrawlApi, site: Site, trap: Listener) -> None:
    response = api.crawl(site.url("/trap-subresources"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Innocent page"
    assert body["blocked_requests"] >= 4  # stylesheet, image, iframe, fetch, [::1], websocket
    time.sleep(0.5)
    assert trap.hits == 0


def test_dns_rebinding_is_refused(api: CrawlApi, trap: Listener, fake_dns: FakeDns) -> None:
    # The first answer (the API's own check) is public; the browser's request resolves again,
    # in the proxy, and gets loopback: the proxy refuses and never connects.
    response = api.crawl(f"http://rebind.test:{trap.port}/")
    assert response.status_code == 400, response.text
    _assert_refused(response.json(), "loopback")
    assert fake_dns.calls["rebind.test"] >= 2
    assert trap.hits == 0
