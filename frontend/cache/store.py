"""Where cached results live: in this process (bounded by bytes) or in a shared Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from frontend.core.redis_options import reconnecting

logger = logging.getLogger(__name__)
# Bookkeeping a dict entry costs besides its key and value, roughly (CPython, measured with
# tracemalloc on 10k small entries: ~150 bytes): max_bytes stays an honest bound.
ENTRY_OVERHEAD = 160
REDIS_PREFIX = "hlai:cache:"
# After Redis fails, requests skip it for this long instead of each waiting for a timeout.
RETRY_SECONDS = 2.0


class Store(Protocol):
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...
    async def put_many(self, tag: str, items: dict[str, bytes]) -> None: ...
    def drop_tag(self, tag: str) -> int: ...
    async def stats(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class MemoryStore:
    """Least-recently-used entries go once the total (keys, values, overhead) passes
    `max_bytes`; entries older than `ttl` are misses. Single-threaded (the event loop)."""

    def __init__(
        self, max_bytes: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self.bytes = 0
        # key -> (tag, value, expires at)
        self._entries: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()

    @staticmethod
    def cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[2] <= self.clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, tag: str, key: str, value: bytes) -> None:
        size = self.cost(key, value)
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (tag, value, self.clock() + self.ttl)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        _, value, _ = self._entries.pop(key)
        self.bytes -= self.cost(key, value)

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    async def put_many(self, tag: str, items: dict[str, bytes]) -> None:
        for key, value in items.items():
            self.put(tag, key, value)

    def drop_tag(self, tag: str) -> int:
        stale = [key for key, (owner, _, _) in self._entries.items() if owner == tag]
        for key in stale:
            self._remove(key)
        return len(stale)

    async def stats(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "entries": len(self),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "available": True,
        }

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0


class RedisStore:
    """Entries in Redis (SET with EX, MGET), shared by every frontend using the same server.

    Redis down or slow is not an error for the request: the cache is skipped (a miss, nothing
    stored), the outage logged once and counted by `on_error`, and Redis tried again after
    RETRY_SECONDS."""

    def __init__(self, uri: str, ttl: float, timeout: float, on_error: Callable[[], None]) -> None:
        self.uri = uri
        self.ttl = max(1, round(ttl))
        self.timeout = timeout
        self.on_error = on_error
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            uri, socket_timeout=timeout, socket_connect_timeout=timeout, **reconnecting()
        )
        self._down_until = 0.0
        self._down = False
        self._refused = False  # logged a refused command once

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.on_error()
        if isinstance(exc, ResponseError):  # it answered (e.g. OOM under maxmemory): not down
            if not self._refused:
                self._refused = True
                logger.warning("result cache: Redis refused a command: %s", str(exc)[:200])
            return
        self._down_until = time.monotonic() + RETRY_SECONDS
        if not self._down:
            self._down = True
            logger.warning(
                "result cache: Redis is unreachable (%s); serving without the cache until it "
                "is back",
                type(exc).__name__,
            )

    def _worked(self) -> None:
        if self._down:
            self._down = False
            logger.info("result cache: Redis is reachable again")

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        try:
            async with asyncio.timeout(self.timeout * 2):
                values = await self.client.mget([REDIS_PREFIX + key for key in keys])
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return [None] * len(keys)
        self._worked()
        return [value if isinstance(value, bytes) else None for value in values]

    async def put_many(self, tag: str, items: dict[str, bytes]) -> None:
        if not items or not self._usable():
            return
        try:
            async with asyncio.timeout(self.timeout * 2):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, value in items.items():
                        pipe.set(REDIS_PREFIX + key, value, ex=self.ttl)
                    await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return
        self._worked()

    def drop_tag(self, tag: str) -> int:
        return 0  # other frontends may still serve the old revision; its keys expire by TTL

    async def stats(self) -> dict[str, Any]:
        """Keys and memory of the whole Redis database (it may hold rate-limit counters too)."""
        stats: dict[str, Any] = {
            "backend": "redis",
            "entries": None,
            "bytes": None,
            "max_bytes": None,
            "available": False,
        }
        if not self._usable():
            return stats
        try:
            async with asyncio.timeout(self.timeout * 2):
                stats["entries"] = int(await self.client.dbsize())
                memory = await self.client.info("memory")
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return stats
        self._worked()
        stats["bytes"] = int(memory.get("used_memory", 0))
        stats["max_bytes"] = int(memory.get("maxmemory", 0)) or None
        stats["available"] = True
        return stats

    async def close(self) -> None:
        await self.client.aclose()
