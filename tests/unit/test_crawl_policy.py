"""The crawl address policy: address classes, IP spellings, allowed hosts, DNS answers."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from frontend.core.config import ConfigError, load_settings
from frontend.crawl.policy import CrawlPolicy, TargetRefused, address_class, parse_ip


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64 around 169.254.169.254
        ("169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("100.64.1.1", "private"),
        ("fd00::1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "reserved"),
    ],
)
def test_address_class(address: str, rule: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == rule


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.org", None),
        ("cafe.be", None),
        ("256.1.1.1", None),
    ],
)
def test_ip_spellings_browsers_accept(host: str, address: str | None) -> None:
    parsed = parse_ip(host)
    assert (str(parsed) if parsed else None) == address


def _resolve(policy: CrawlPolicy, host: str, answer: list[str]) -> list[str]:
    async def resolver(name: str, port: int) -> list[str]:
        return answer

    return [str(a) for a in asyncio.run(policy.resolve(host, 80, resolver))]


def test_default_policy_refuses_any_non_public_answer() -> None:
    policy = CrawlPolicy(False, [])
    assert _resolve(policy, "example.org", ["93.184.215.14"]) == ["93.184.215.14"]
    with pytest.raises(TargetRefused) as caught:
        _resolve(policy, "example.org", ["93.184.215.14", "10.0.0.7"])
    assert caught.value.refusal.rule == "private"
    assert "resolves to" in caught.value.refusal.message


def test_allowed_hosts_by_name_ip_and_cidr() -> None:
    policy = CrawlPolicy(False, ["nas.lan", "192.168.1.20", "10.8.0.0/16", "fd12::/64"])
    assert _resolve(policy, "NAS.lan.", ["192.168.7.7"]) == ["192.168.7.7"]
    assert _resolve(policy, "printer", ["192.168.1.20"]) == ["192.168.1.20"]
    assert _resolve(policy, "10.8.200.1", []) == ["10.8.200.1"]
    assert _resolve(policy, "[fd12::5]", []) == ["fd12::5"]
    for host, answer in (("printer", ["192.168.1.21"]), ("10.9.0.1", []), ("x", ["127.0.0.1"])):
        with pytest.raises(TargetRefused):
            _resolve(policy, host, answer)


def test_allow_private_networks_keeps_multicast_and_unspecified_refused() -> None:
    policy = CrawlPolicy(True, [])
    for host in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "[fe80::1]"):
        assert _resolve(policy, host, [])
    for host in ("224.0.0.1", "0.0.0.0"):
        with pytest.raises(TargetRefused):
            _resolve(policy, host, [])


def test_failed_resolution_is_an_os_error() -> None:
    with pytest.raises(socket.gaierror):
        _resolve(CrawlPolicy(False, []), "nothing.example", [])


@pytest.mark.parametrize(
    ("url", "rule"),
    [("file:///etc/passwd", "scheme"), ("gopher://x/", "scheme"), ("http://", "invalid_url")],
)
def test_check_url(url: str, rule: str) -> None:
    with pytest.raises(TargetRefused) as caught:
        CrawlPolicy(False, []).check_url(url)
    assert caught.value.refusal.rule == rule


def test_check_url_ports() -> None:
    policy = CrawlPolicy(False, [])
    assert policy.check_url("https://Example.org/a") == ("example.org", 443)
    assert policy.check_url("http://[::1]:8080/") == ("::1", 8080)


def test_config_validates_allowed_hosts_and_timeouts() -> None:
    settings = load_settings(None, crawl={"allowed_hosts": ["nas.lan", "10.0.0.0/8", "::1"]})
    assert settings.crawl.allowed_hosts == ["nas.lan", "10.0.0.0/8", "::1"]
    with pytest.raises(ConfigError, match=r"crawl.allowed_hosts"):
        load_settings(None, crawl={"allowed_hosts": ["http://nas.lan/"]})
    with pytest.raises(ConfigError, match=r"crawl"):
        load_settings(None, crawl={"default_timeout_ms": 90_000, "max_timeout_ms": 60_000})
    with pytest.raises(ConfigError, match=r"crawl.surprise"):
        load_settings(None, crawl={"surprise": 1})
