"""Crawl slots: a free slot goes to foreground crawls before background pages, each kind in
order; cancelled waiters neither take nor leak a slot."""

from __future__ import annotations

import asyncio

import pytest

from frontend.crawl.slots import Slots


async def _hold(
    slots: Slots, background: bool, name: str, order: list[str], gate: asyncio.Event
) -> None:
    async with slots.hold(background):
        order.append(name)
        await gate.wait()


def test_foreground_waiters_go_before_background_ones_that_came_first() -> None:
    async def scenario() -> list[str]:
        slots, order = Slots(2), []
        gates = {name: asyncio.Event() for name in ("b1", "b2", "b3", "b4", "f1", "f2")}
        tasks = {}
        for name in ("b1", "b2", "b3", "b4", "f1", "f2"):  # b3, b4 queue before f1, f2
            tasks[name] = asyncio.create_task(
                _hold(slots, name.startswith("b"), name, order, gates[name])
            )
            await asyncio.sleep(0)
        assert order == ["b1", "b2"] and slots.busy == 2
        assert slots.waiting(background=True) == 2 and slots.waiting(background=False) == 2
        for name in ("b1", "b2", "f1", "f2", "b3", "b4"):
            gates[name].set()
            await tasks[name]
            await asyncio.sleep(0)
        assert slots.busy == 0
        return order

    assert asyncio.run(scenario()) == ["b1", "b2", "f1", "f2", "b3", "b4"]


def test_free_slots_are_taken_at_once_by_either_kind() -> None:
    async def scenario() -> None:
        slots = Slots(3)
        async with slots.hold(background=True), slots.hold():
            assert slots.busy == 2
        assert slots.busy == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("background", [False, True])
def test_a_cancelled_waiter_takes_no_slot_and_leaks_none(background: bool) -> None:
    async def scenario() -> None:
        slots, order = Slots(1), []
        gate, never = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(slots, False, "holder", order, gate))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(slots, background, "cancelled", order, never))
        after = asyncio.create_task(_hold(slots, True, "after", order, gate))
        await asyncio.sleep(0)
        waiter.cancel()
        gate.set()
        await holder
        await after
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert order == ["holder", "after"] and slots.busy == 0

    asyncio.run(scenario())


def test_a_waiter_cancelled_just_as_it_was_granted_gives_the_slot_back() -> None:
    async def scenario() -> None:
        slots, order = Slots(1), []
        gate = asyncio.Event()
        holder = asyncio.create_task(_hold(slots, False, "holder", order, gate))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(slots, True, "granted", order, asyncio.Event()))
        await asyncio.sleep(0)
        gate.set()
        await holder  # the release grants the waiter's future...
        waiter.cancel()  # ...and it is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert slots.busy == 0
        async with slots.hold():
            assert slots.busy == 1

    asyncio.run(scenario())
