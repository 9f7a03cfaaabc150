"""The Status tab's ring buffer with an injected clock: rates, percentiles, families, wraparound."""

from __future__ import annotations

import asyncio
import random

import pytest

from frontend.status.history import StatusHistory, percentile, route_family


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rates_are_per_second_over_the_real_interval() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock)
    for status in [200] * 17 + [503, 500, 404]:
        history.record("/api/embed", status, 0.01)
    clock.now += 10
    point = history.sample({"minilm": 100}, None)
    assert point.requests_per_second == 2.0
    assert point.server_errors_per_second == 0.2
    assert point.client_errors_per_second == 0.1
    assert point.t == clock.now
    # a late tick (12.5 s) divides by its real length, and the next interval starts empty
    history.record("/api/embed", 200, 0.01)
    clock.now += 12.5
    assert history.sample({}, None).requests_per_second == 0.08
    clock.now += 10
    assert history.sample({}, None).requests_per_second == 0.0


def test_percentiles_per_route_family() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock)
    for ms in range(1, 101):  # 1..100 ms on the embedding routes, in shuffled order
        history.record(("/api/embed", "/v1/embeddings", "/embed")[ms % 3], 200, ms / 1000)
    history.record("/v2/rerank", 200, 0.25)
    clock.now += 10
    point = history.sample({}, None)
    assert point.latency_ms == {"embed": (50.0, 95.0), "rerank": (250.0, 250.0)}
    data = history.to_json()
    assert data["latency_ms"]["embed"] == {"p50": [50.0], "p95": [95.0]}
    assert "ocr" not in data["latency_ms"]


@pytest.mark.parametrize(
    ("template", "family"),
    [
        ("/api/embed", "embed"),
        ("/v1/embeddings", "embed"),
        ("/vectors", "embed"),
        ("/rerank", "rerank"),
        ("/v2/rerank", "rerank"),
        ("/api/chat", "vision"),
        ("/v1/chat/completions", "vision"),
        ("/api/caption", "vision"),
        ("/api/ocr", "ocr"),
        ("/tika/text", "ocr"),
        ("/rmeta/text", "ocr"),
        ("/api/crawl/site", "crawl"),
        ("/v2/crawl/{job_id}/errors", "crawl"),
        ("/v1/scrape", "crawl"),
        ("/api/jobs/{job_id}", "jobs"),
        ("/api/models/{model_id}/load", "models"),
        ("/v1/models", "models"),
        ("/api/status", "other"),
        ("/api/status/history", "other"),
        ("unmatched", "other"),
        ("/api/embedx", "other"),  # a prefix is a path segment, not a string prefix
    ],
)
def test_route_family(template: str, family: str) -> None:
    assert route_family(template) == family


def test_nearest_rank_percentile() -> None:
    assert percentile([7.0], 0.5) == 7.0 and percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0], 0.5) == 1.0 and percentile([1.0, 2.0], 0.95) == 2.0
    assert percentile([float(i) for i in range(1, 21)], 0.95) == 19.0


def test_wraparound_keeps_the_newest_points_in_order() -> None:
    clock = Clock()
    history = StatusHistory(capacity=5, clock=clock)
    for i in range(12):
        for _ in range(i):
            history.record("/api/embed", 200, 0.001)
        clock.now += 10
        history.sample({"minilm": 1000 + i}, None)
    data = history.to_json()
    assert len(data["t"]) == 5 and data["t"] == sorted(data["t"])
    assert data["requests_per_second"] == [0.7, 0.8, 0.9, 1.0, 1.1]
    assert data["model_memory_bytes"] == {"minilm": [1007, 1008, 1009, 1010, 1011]}
    assert data["capacity"] == 5 and data["interval_seconds"] == 10.0


def test_columns_align_with_nulls_for_gaps() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock)
    history.record("/api/ocr", 200, 0.1)
    clock.now += 10
    history.sample({"minilm": 5}, None)
    clock.now += 10
    history.sample({"rapidocr": 7}, None)
    data = history.to_json()
    assert data["model_memory_bytes"] == {"minilm": [5, None], "rapidocr": [None, 7]}
    assert data["latency_ms"]["ocr"] == {"p50": [100.0, None], "p95": [100.0, None]}
    assert data["gpu_memory_used_bytes"] is None  # no GPU: no series at all
    clock.now += 10
    history.sample({}, 2048)
    assert history.to_json()["gpu_memory_used_bytes"] == [None, None, 2048]


def test_empty_history_is_empty_columns() -> None:
    data = StatusHistory(clock=Clock()).to_json()
    assert data["t"] == [] and data["latency_ms"] == {} and data["model_memory_bytes"] == {}


def test_reservoir_bounds_memory_and_keeps_a_fair_sample() -> None:
    clock = Clock()
    history = StatusHistory(clock=clock, reservoir=200, rng=random.Random(7))
    # 10,000 requests: 90 % at 10 ms, 10 % at 1 s
    for i in range(10_000):
        history.record("/api/embed", 200, 1.0 if i % 10 == 0 else 0.01)
    assert len(history._current.latencies["embed"]) == 200
    clock.now += 10
    point = history.sample({}, None)
    assert point.latency_ms["embed"] == (10.0, 1000.0)
    assert point.requests_per_second == 1000.0  # rates count every request, not the sample


def test_run_samples_on_a_timer_and_survives_a_failing_gauge() -> None:
    calls = 0

    def gauges() -> tuple[dict[str, int], int | None]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ProcessLookupError("a stub exited mid-read")
        return {"minilm": calls}, None

    async def scenario() -> StatusHistory:
        history = StatusHistory(interval=0.02)
        task = asyncio.create_task(history.run(gauges))
        while len(history.points) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        return history

    history = asyncio.run(asyncio.wait_for(scenario(), 30))
    memory = [p.model_memory_bytes for p in list(history.points)[:3]]
    assert memory == [{"minilm": 1}, {}, {"minilm": 3}]
