"""triton.url with several addresses, and how the gateway chooses among its replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from frontend.core.config import ConfigError, load_settings
from frontend.triton.gateway import TritonGateway
from frontend.triton.replicas import merge_statistics


def test_single_url_stays_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMELAB_TRITON__URL", "triton:8001")

    triton = load_settings(None).triton

    assert triton.url == "triton:8001"
    assert triton.urls == ["triton:8001"]


def test_comma_separated_env_value_gives_several_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMELAB_TRITON__URL", "triton-a:8001, triton-b:8001")

    assert load_settings(None).triton.urls == ["triton-a:8001", "triton-b:8001"]


def test_yaml_list_gives_several_urls() -> None:
    triton = load_settings(None, triton={"url": ["10.0.0.5:8001", "10.0.0.6:8001"]}).triton

    assert triton.urls == ["10.0.0.5:8001", "10.0.0.6:8001"]


def test_no_url_means_the_embedded_server() -> None:
    assert load_settings(None).triton.urls == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "at least one"),
        ("a:8001,,b:8001", "without spaces"),
        (["a:8001", "a:8001"], "more than once"),
        (["a:8001", "b 8001"], "without spaces"),
    ],
)
def test_bad_url_lists_name_the_key(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"triton\.url: .*{message}"):
        load_settings(None, triton={"url": value})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make_gateway(loop: asyncio.AbstractEventLoop, count: int) -> TritonGateway:
    async def build() -> TritonGateway:  # gRPC aio channels belong to a running loop
        return TritonGateway([f"127.0.0.1:{9000 + i}" for i in range(count)])

    return loop.run_until_complete(build())


def test_idle_replicas_take_turns(loop: asyncio.AbstractEventLoop) -> None:
    gateway = make_gateway(loop, 3)

    picked = [gateway._pick(set()) for _ in range(6)]

    assert [r.url if r else None for r in picked] == gateway.urls * 2
    loop.run_until_complete(gateway.close())


def test_busiest_replica_is_avoided_and_down_ones_skipped(
    loop: asyncio.AbstractEventLoop,
) -> None:
    gateway = make_gateway(loop, 3)
    a, b, c = gateway.replicas
    a.in_flight, b.in_flight, c.in_flight = 4, 1, 0
    c.up = False

    assert {id(gateway._pick(set())) for _ in range(4)} == {id(b)}
    assert gateway._pick({b}) is a
    assert gateway._pick({a, b}) is None  # c is down while others are up: not tried
    loop.run_until_complete(gateway.close())


def test_when_every_replica_is_down_each_is_still_tried_once(
    loop: asyncio.AbstractEventLoop,
) -> None:
    gateway = make_gateway(loop, 2)
    a, b = gateway.replicas
    a.up = b.up = False

    first = gateway._pick(set())
    assert first is not None
    second = gateway._pick({first})
    assert {first, second} == {a, b}
    assert gateway._pick({a, b}) is None
    loop.run_until_complete(gateway.close())


def test_statistics_of_replicas_add_up() -> None:
    one = {
        "name": "m",
        "version": "1",
        "last_inference": "100",
        "inference_count": "3",
        "inference_stats": {"success": {"count": "3", "ns": "300"}},
    }
    two = {
        "name": "m",
        "version": "1",
        "last_inference": "250",
        "inference_count": "4",
        "inference_stats": {"success": {"count": "4", "ns": "100"}},
    }

    total = merge_statistics(merge_statistics({}, one), two)

    assert total["name"] == "m" and total["version"] == "1"
    assert total["last_inference"] == 250
    assert total["inference_count"] == "7"
    assert total["inference_stats"]["success"] == {"count": "7", "ns": "400"}
