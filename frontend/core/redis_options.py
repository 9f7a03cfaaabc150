"""Connection options shared by every Redis client of the service (rate limits, result cache,
job store and queue)."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError


def reconnecting() -> dict[str, Any]:
    """redis-py options that retry a command once, on a fresh connection, when its connection
    is broken. Pooled connections to a Redis that has since restarted fail on first use; without
    this, each would cost one request its rate limit, cache entry or job. Time-outs are not
    retried, so an unreachable Redis costs one time-out, not two. A new list each call: redis-py
    appends to it."""
    return {"retry_on_error": [RedisConnectionError]}
