"""The last minute's request rate and latency that GET /api/status reports (admin page)."""

from __future__ import annotations

from frontend.core.observability import RecentTraffic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_latency_and_errors_over_the_window() -> None:
    clock = Clock()
    traffic = RecentTraffic(window=60, clock=clock)
    assert traffic.summary() == {
        "window_seconds": 60,
        "requests": 0,
        "requests_per_second": 0.0,
        "mean_latency_ms": None,
        "server_errors": 0,
    }
    clock.now += 30  # up for 30 s: the rate is over those, not the whole window
    for seconds, status in [(0.010, 200), (0.030, 200), (0.050, 503)]:
        traffic.record(seconds, status)
    summary = traffic.summary()
    assert (summary["requests"], summary["server_errors"]) == (3, 1)
    assert summary["mean_latency_ms"] == 30.0
    assert summary["requests_per_second"] == 0.1
    clock.now += 45
    traffic.record(0.100, 404)
    summary = traffic.summary()
    assert (summary["requests"], summary["server_errors"]) == (4, 1)
    assert summary["requests_per_second"] == round(4 / 60, 3)
    clock.now += 30  # the first three are more than a minute old
    summary = traffic.summary()
    assert summary["requests"] == 1 and summary["server_errors"] == 0
    assert summary["mean_latency_ms"] == 100.0


def test_buckets_stay_bounded() -> None:
    clock = Clock()
    traffic = RecentTraffic(window=60, clock=clock)
    for _ in range(10_000):
        clock.now += 0.1
        traffic.record(0.001, 200)
    assert len(traffic._buckets) <= 60
    assert traffic.summary()["requests"] in range(590, 611)
