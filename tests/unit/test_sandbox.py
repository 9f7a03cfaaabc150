"""The document sandbox's pool on real worker processes: each limit ends only the call that
passed it, with 413 naming the limit; the worker is replaced and the pool goes on; errors
cross as the envelope's; requests beyond the pool wait, then 503."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from frontend.core.config import DocumentsSection
from frontend.core.errors import DocumentTooComplex, InvalidRequest, ResourceExhausted
from frontend.sandbox.pool import Sandbox, SandboxFailure
from tests import sandbox_calls as calls


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    pool = Sandbox(
        DocumentsSection(
            workers=1, memory_mib=400, cpu_seconds=2, timeout_seconds=20, queue_timeout_seconds=30
        )
    )
    yield pool
    pool.close()


async def one(pool: Sandbox, function: object, *args: object) -> object:
    async with pool.lease() as worker:
        return await worker.call(function, *args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "args", "limit"),
    [
        (calls.burn_cpu, (), "documents.cpu_seconds"),
        (calls.allocate, (1000,), "documents.memory_mib"),
        (calls.crash, (), "documents.memory_mib"),
    ],
    ids=["cpu", "memory", "crash"],
)
def test_a_limit_ends_the_call_with_413_and_the_worker_is_replaced(
    sandbox: Sandbox, function: object, args: tuple[object, ...], limit: str
) -> None:
    async def scenario() -> None:
        first = await one(sandbox, calls.pid)
        with pytest.raises(DocumentTooComplex) as raised:
            await one(sandbox, function, *args)
        assert raised.value.status == 413
        assert raised.value.details == {"limit": limit, "value": getattr(
            sandbox.section, limit.split(".")[1])}  # fmt: skip
        assert limit in raised.value.message
        replaced = await one(sandbox, calls.pid)
        assert replaced != first and sandbox.started == 2
        assert await one(sandbox, calls.sleep, 0) == 0

    asyncio.run(scenario())


def test_a_call_past_the_wall_timeout_is_killed() -> None:
    pool = Sandbox(DocumentsSection(workers=1, timeout_seconds=1))
    try:
        with pytest.raises(DocumentTooComplex) as raised:
            asyncio.run(one(pool, calls.sleep, 30))
        assert raised.value.details == {"limit": "documents.timeout_seconds", "value": 1}
        assert asyncio.run(one(pool, calls.sleep, 0)) == 0
    finally:
        pool.close()


def test_errors_cross_as_they_were_raised(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(one(sandbox, calls.refuse))
    assert refused.value.message == "not this file" and refused.value.details == {"page": 3}
    with pytest.raises(SandboxFailure):
        asyncio.run(one(sandbox, calls.fail))
    assert sandbox.started == 1  # neither error cost the worker


def test_arrays_come_back_whole(sandbox: Sandbox) -> None:
    image = asyncio.run(one(sandbox, calls.gradient, 300, 200))
    assert isinstance(image, np.ndarray) and image.flags.writeable
    assert np.array_equal(image, calls.gradient(300, 200))


def test_a_lease_keeps_its_state_and_the_next_lease_starts_clean(sandbox: Sandbox) -> None:
    async def scenario() -> tuple[str | None, str | None]:
        async with sandbox.lease() as worker:
            await worker.call(calls.remember, "mine")
            kept = await worker.call(calls.recall)
        return kept, await one(sandbox, calls.recall)  # type: ignore[return-value]

    assert asyncio.run(scenario()) == ("mine", None)


def test_requests_beyond_the_pool_wait_then_get_503() -> None:
    pool = Sandbox(DocumentsSection(workers=1, queue_timeout_seconds=0.5))

    async def scenario() -> None:
        await one(pool, calls.pid)  # started
        busy = asyncio.ensure_future(one(pool, calls.sleep, 2))
        await asyncio.sleep(0.1)
        with pytest.raises(ResourceExhausted):
            await one(pool, calls.pid)
        assert await busy == 2
        assert await one(pool, calls.sleep, 0) == 0

    try:
        asyncio.run(scenario())
        assert pool.started == 1  # waiting never forked more workers
    finally:
        pool.close()


def test_concurrent_leases_share_the_pool_without_forking_more(sandbox: Sandbox) -> None:
    async def scenario() -> list[object]:
        return list(await asyncio.gather(*(one(sandbox, calls.sleep, 0.2) for _ in range(4))))

    assert asyncio.run(scenario()) == [0.2] * 4
    assert sandbox.started == 1
