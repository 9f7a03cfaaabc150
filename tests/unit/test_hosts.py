"""The Host header check (DNS rebinding): which names and addresses each bind answers to."""

from __future__ import annotations

import pytest

from frontend.core.config import ConfigError, load_settings
from frontend.core.hosts import HostPolicy


def policy(bind: str = "127.0.0.1", *allowed: str) -> HostPolicy:
    server = load_settings(None, server={"host": bind, "allowed_hosts": list(allowed)}).server
    return HostPolicy(server.host, server.allowed_hosts)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8000",
        "LOCALHOST.:8000",
        "app.localhost:9",
        "127.0.0.1:8000",
        "127.3.2.1",
        "[::1]:8000",
        "[::ffff:127.0.0.1]:80",
    ],
)
def test_loopback_names_and_addresses_are_always_allowed(host: str) -> None:
    assert policy().allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:8000",
        "attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "192.168.1.10:8000",
        "[fe80::1]",
        "",
        "localhost:8000:1",
        "local host",
        "a/b",
    ],
)
def test_other_names_and_addresses_are_refused_on_a_loopback_bind(host: str) -> None:
    assert not policy().allows(host)


def test_a_wildcard_bind_answers_any_ip_literal_but_only_listed_names() -> None:
    lan = policy("0.0.0.0", "nas.lan")
    assert lan.allows("192.168.1.10:8000")
    assert lan.allows("[fd00::5]:8000")
    assert lan.allows("nas.lan:8000")
    assert lan.allows("NAS.LAN")
    assert not lan.allows("attacker.example")
    assert policy("::").allows("10.0.0.7")


def test_a_specific_bind_answers_its_own_address() -> None:
    assert policy("192.168.1.5").allows("192.168.1.5:8000")
    assert not policy("192.168.1.5").allows("192.168.1.6:8000")
    assert policy("nas.lan").allows("nas.lan")


def test_wildcard_entries_match_subdomains_and_star_disables_the_check() -> None:
    proxied = policy("127.0.0.1", "*.example.com", "ai.example.org")
    assert proxied.allows("ai.example.com")
    assert proxied.allows("a.b.example.com:443")
    assert not proxied.allows("example.com")  # list the apex itself if it is served
    assert not proxied.allows("evilexample.com")
    assert proxied.allows("ai.example.org")
    assert policy("127.0.0.1", "*").allows("anything.at.all")


def test_allowed_hosts_come_from_the_environment_as_a_comma_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOMELAB_SERVER__ALLOWED_HOSTS", "nas.lan, AI.example.com.,10.0.0.2")
    assert load_settings(None).server.allowed_hosts == ["nas.lan", "ai.example.com", "10.0.0.2"]
    monkeypatch.setenv("HOMELAB_SERVER__ALLOWED_HOSTS", '["nas.lan"]')
    assert load_settings(None).server.allowed_hosts == ["nas.lan"]


@pytest.mark.parametrize("entry", ["http://nas.lan", "nas.lan:8000", "a..b", "*.*.com", "a b"])
def test_an_invalid_allowed_host_names_the_key(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.allowed_hosts"):
        load_settings(None, server={"allowed_hosts": [entry]})
