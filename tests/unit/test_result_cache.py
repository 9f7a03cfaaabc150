"""The result cache's pieces without a service: keys, the byte-bounded store, Cache-Control,
and ResultCache.fetch computing only what is missing."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from frontend.cache.keys import item_key, key_prefix
from frontend.cache.service import CacheTrace, ResultCache, current_trace
from frontend.cache.store import ENTRY_OVERHEAD, MemoryStore, RedisStore
from frontend.core.config import CacheSection, ModelEntry
from frontend.triton.embedded import free_port

MINILM = ModelEntry(id="minilm", hf_model="sentence-transformers/all-MiniLM-L6-v2")


def key(
    entry: ModelEntry = MINILM,
    revision: str = "r1",
    options: dict | None = None,
    text: bytes = b"hello",
) -> str:
    return item_key(key_prefix("embed", entry, revision, options), [text])


def test_keys_change_with_model_revision_options_and_input() -> None:
    base = key()
    assert key() == base  # deterministic
    assert len(base) == 64
    others = {
        key(revision="r2"),
        key(options={"num_beams": 2}),
        key(text=b"hello "),
        key(entry=MINILM.model_copy(update={"hf_model": "BAAI/bge-small-en-v1.5"})),
        key(entry=MINILM.model_copy(update={"engine": "onnx-int8"})),
        item_key(key_prefix("ocr", MINILM, "r1", None), [b"hello"]),
    }
    assert base not in others and len(others) == 6


def test_config_id_and_serving_settings_do_not_change_the_key() -> None:
    # Two entries for one model (say a pinned one and a brief one) share their results.
    twin = MINILM.model_copy(update={"id": "minilm-brief", "threads": 4, "keep_alive_seconds": 2})
    assert key(entry=twin) == key()


def test_parts_are_length_prefixed() -> None:
    prefix = key_prefix("ocr", MINILM, "r1", None)
    assert item_key(prefix, [b"(2, 3)", b"ab"]) != item_key(prefix, [b"(2, 3)a", b"b"])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_evicts_least_recently_used_beyond_max_bytes() -> None:
    one = MemoryStore.cost("k0", b"x" * 100)
    store = MemoryStore(max_bytes=3 * one, ttl=60)
    for index in range(3):
        store.put("m", f"k{index}", b"x" * 100)
    assert store.get("k0") is not None  # k0 is now the most recently used
    store.put("m", "k3", b"x" * 100)
    assert store.get("k1") is None
    assert [store.get(k) is not None for k in ("k0", "k2", "k3")] == [True, True, True]
    assert store.bytes == 3 * one <= store.max_bytes
    assert one == 2 + 100 + ENTRY_OVERHEAD


def test_memory_store_skips_a_value_larger_than_the_whole_budget() -> None:
    store = MemoryStore(max_bytes=1000, ttl=60)
    store.put("m", "small", b"x")
    store.put("m", "huge", b"x" * 2000)
    assert store.get("huge") is None and store.get("small") == b"x"


def test_memory_store_expires_and_drops_one_models_entries() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=10_000, ttl=10, clock=clock)
    store.put("a", "k1", b"1")
    store.put("b", "k2", b"2")
    assert store.drop_tag("a") == 1
    assert store.get("k1") is None and store.get("k2") == b"2"
    clock.now += 11
    assert store.get("k2") is None
    assert len(store) == 0 and store.bytes == 0


@pytest.mark.parametrize(
    ("header", "read", "write"),
    [
        ("", True, True),
        ("no-cache", False, True),
        ("No-Store", False, False),
        ("max-age=0, no-cache,", False, True),
        ("max-age=60", True, True),
    ],
)
def test_cache_control(header: str, read: bool, write: bool) -> None:
    trace = CacheTrace.from_cache_control(header, {})
    assert (trace.read, trace.write) == (read, write)


@pytest.mark.parametrize(
    ("hits", "misses", "bypassed", "header"),
    [
        (3, 0, False, "hit"),
        (1, 2, False, "partial"),
        (0, 2, False, "miss"),
        (0, 0, True, "bypass"),
        (0, 0, False, None),
    ],
)
def test_x_cache_header(hits: int, misses: int, bypassed: bool, header: str | None) -> None:
    assert CacheTrace(hits=hits, misses=misses, bypassed=bypassed).header() == header


def make_cache(revision: list[str | None]) -> ResultCache:
    return ResultCache(CacheSection(), CollectorRegistry(), lambda entry: revision[0])


def test_fetch_computes_only_missing_inputs_once_each_and_keeps_the_order() -> None:
    revision: list[str | None] = ["r1"]
    cache = make_cache(revision)
    asked: list[list[bytes]] = []

    def run(texts: list[bytes], header: str = "") -> tuple[list[bytes], CacheTrace]:
        async def compute(indices: list[int]) -> list[bytes]:
            asked.append([texts[i] for i in indices])
            return [b"v:" + texts[i] for i in indices]

        async def go() -> list[bytes]:
            return await cache.fetch("embed", MINILM, None, [[t] for t in texts], compute)

        trace = CacheTrace.from_cache_control(header, {})
        token = current_trace.set(trace)
        try:
            return asyncio.run(go()), trace
        finally:
            current_trace.reset(token)

    values, trace = run([b"a", b"b", b"a"])
    assert values == [b"v:a", b"v:b", b"v:a"] and asked == [[b"a", b"b"]]
    assert (trace.hits, trace.misses, trace.header()) == (0, 3, "miss")
    values, trace = run([b"c", b"a", b"b", b"d"])
    assert values == [b"v:c", b"v:a", b"v:b", b"v:d"] and asked[-1] == [b"c", b"d"]
    assert trace.header() == "partial"
    values, trace = run([b"d", b"c"])
    assert trace.header() == "hit" and len(asked) == 2
    values, trace = run([b"d"], "no-cache")
    assert trace.header() == "bypass" and asked[-1] == [b"d"]
    # A new revision of the model: new keys, and the old revision's entries are dropped.
    revision[0] = "r2"
    values, trace = run([b"a"])
    assert trace.header() == "miss" and len(cache.store) == 1  # type: ignore[arg-type]
    # Unknown revision (not downloaded): computed, nothing cached, no header.
    revision[0] = None
    values, trace = run([b"a"])
    assert values == [b"v:a"] and trace.header() is None
    assert (cache.hits, cache.misses) == (4, 6)


def test_two_entries_of_one_model_on_different_revisions_keep_their_entries() -> None:
    # minilm still loaded from r1 while minilm-brief (unloaded) already reads r2 from disk.
    twin = MINILM.model_copy(update={"id": "minilm-brief"})
    revisions = {"minilm": "r1", "minilm-brief": "r2"}
    cache = ResultCache(CacheSection(), CollectorRegistry(), lambda entry: revisions[entry.id])

    async def compute(indices: list[int]) -> list[bytes]:
        return [b"v"] * len(indices)

    async def go(entry: ModelEntry) -> None:
        await cache.fetch("embed", entry, None, [[b"text"]], compute)

    for entry in (MINILM, twin, MINILM, twin):
        asyncio.run(go(entry))
    assert (cache.hits, cache.misses) == (2, 2)
    # minilm reloads from r2: nobody serves r1 any more, its entry goes.
    revisions["minilm"] = "r2"
    asyncio.run(go(MINILM))
    assert len(cache.store) == 1  # type: ignore[arg-type]
    assert (cache.hits, cache.misses) == (3, 2)


def test_unreachable_redis_is_a_miss_counted_once_per_retry_pause() -> None:
    errors: list[int] = []
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", 60, 0.5, lambda: errors.append(1))

    async def go() -> list[bytes | None]:
        try:
            first = await store.get_many(["a", "b"])
            await store.put_many("m", {"a": b"1"})  # skipped: Redis is resting
            stats = await store.stats()
            assert stats["available"] is False and stats["entries"] is None
            return first
        finally:
            await store.close()

    assert asyncio.run(go()) == [None, None]
    assert errors == [1]
