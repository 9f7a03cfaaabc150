"""Which crawl targets are allowed: schemes, host names and every address a host resolves to."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from frontend.crawl.urls import WebUrl, parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses to connect to; raises OSError (socket.gaierror) when it fails.
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_IETF_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")  # not global in older Pythons' tables


@dataclass(frozen=True)
class Refusal:
    """Why a target is refused: `rule` is one of the documented rule names."""

    rule: str
    host: str
    message: str


class TargetRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo), in its order."""
    import asyncio

    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_ip(host: str) -> IPAddress | None:
    """An IP literal as a browser reads it (IPv6 in brackets, IPv4 also as 2130706433 or 0x7f.1)."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    # Browsers read a host whose last label is a number as IPv4, in the forms inet_aton takes.
    if re.fullmatch(r"[0-9A-Fa-fXx.]+", text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address reaches (mapped, 6to4, Teredo, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_class(address: IPAddress) -> str | None:
    """The rule that refuses this address by default, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_class(inner)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved or address in _IETF_ASSIGNMENTS:
        return "reserved"
    if address.is_private or address in _SHARED_ADDRESS_SPACE:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


_RULE_TEXT = {
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "link_local": "a link-local address (cloud metadata lives there)",
    "multicast": "a multicast address",
    "private": "a private-network address",
    "reserved": "a reserved or non-routable address",
}
# Opening the private ranges never opens these: they are not places a page can live.
_NEVER_WITH_PRIVATE = ("unspecified", "multicast")


class CrawlPolicy:
    """Default: refuse every non-public address. `allow_private_networks` and `allowed_hosts`
    (host names, IPs or CIDRs) open it up."""

    def __init__(self, allow_private_networks: bool, allowed_hosts: Iterable[str]) -> None:
        self.allow_private_networks = allow_private_networks
        self.allowed_names: set[str] = set()
        self.allowed_networks: list[IPNetwork] = []
        for entry in allowed_hosts:
            network = parse_network(entry)
            if network is None:
                self.allowed_names.add(entry.lower().rstrip("."))
            else:
                self.allowed_networks.append(network)

    def parse(self, url: str) -> WebUrl:
        """The URL as the browser reads it, if its scheme and host may be crawled at all
        (addresses are checked by `resolve`). Raises TargetRefused."""
        parsed = parse_url(url)
        if parsed is None:
            raise TargetRefused(Refusal("invalid_url", "", "the URL cannot be parsed"))
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise TargetRefused(
                Refusal(
                    "scheme", "", f"only http and https URLs can be crawled, not '{parsed.scheme}:'"
                )
            )
        if not parsed.host:
            raise TargetRefused(Refusal("invalid_url", "", "the URL has no host"))
        return parsed

    def check_url(self, url: str) -> tuple[str, int]:
        """Scheme and host syntax of a URL; returns (host, port). Raises TargetRefused."""
        parsed = self.parse(url)
        return parsed.host, parsed.effective_port

    def host_allowed_by_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_names

    def check_address(self, host: str, address: IPAddress) -> Refusal | None:
        """None when `address` (one of `host`'s) may be reached, else the rule refusing it."""
        if any(address in net for net in self.allowed_networks if net.version == address.version):
            return None
        rule = address_class(address)
        if rule is None or self.host_allowed_by_name(host):
            return None
        if self.allow_private_networks and rule not in _NEVER_WITH_PRIVATE:
            return None
        return Refusal(rule, host, f"{host} is {_RULE_TEXT[rule]}; crawling it is not allowed")

    async def resolve(self, host: str, port: int, resolver: Resolver) -> list[IPAddress]:
        """Every address of `host`, each checked: one refused address refuses the host (so a
        DNS answer cannot mix a public address with a private one). Raises TargetRefused or
        OSError (resolution failed)."""
        literal = parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = [
                ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolver(host, port)
            ]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        for address in addresses:
            refusal = self.check_address(host, address)
            if refusal is not None:
                if literal is None:
                    refusal = Refusal(
                        refusal.rule,
                        host,
                        f"{host} resolves to {_RULE_TEXT[refusal.rule]}; "
                        "crawling it is not allowed",
                    )
                raise TargetRefused(refusal)
        return addresses


def parse_network(entry: str) -> IPNetwork | None:
    """An IP or CIDR from `allowed_hosts`, or None for a host name."""
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None
