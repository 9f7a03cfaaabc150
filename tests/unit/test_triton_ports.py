"""The embedded Triton's ports: three different free ports, never the API's own."""

from __future__ import annotations

import itertools

import pytest

from frontend.triton import embedded
from frontend.triton.embedded import TritonPorts


def test_chosen_ports_skip_the_apis_port_and_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the OS hands out when ports are closed and reused at once (seen in CI: Triton's
    # gRPC port was the one the API was about to bind after its startup).
    offered = itertools.chain([5000, 5000, 6000, 6000, 7000], itertools.count(9000))
    monkeypatch.setattr(embedded, "free_port", lambda: next(offered))
    assert TritonPorts.choose(avoid=frozenset({5000})) == TritonPorts(6000, 7000, 9000)


def test_configured_ports_are_kept() -> None:
    assert TritonPorts.choose(8100, 8101, 8102, avoid=frozenset({8000})) == TritonPorts(
        8100, 8101, 8102
    )


def test_real_free_ports_are_distinct_and_not_avoided() -> None:
    for _ in range(20):
        api = embedded.free_port()
        ports = TritonPorts.choose(avoid=frozenset({api}))
        chosen = {ports.http, ports.grpc, ports.metrics}
        assert len(chosen) == 3 and api not in chosen and 0 not in chosen
