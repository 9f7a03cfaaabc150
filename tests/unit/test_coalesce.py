"""frontend.triton.coalesce: concurrent calls share requests, each caller gets its own rows."""

from __future__ import annotations

import asyncio

import numpy as np

from frontend.triton.coalesce import Coalescer, Rows


async def answer(model: Model, *numbers: int) -> None:
    async with model.progress:
        model.answered.update(numbers)
        model.progress.notify_all()


async def answer_all(model: Model) -> None:
    async with model.progress:
        model.release.set()
        model.progress.notify_all()


class Model:
    """Stands in for a Triton model: rows are (index of the item's text, call number)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()  # every call may answer
        self.answered: set[int] = set()  # or just these call numbers (1-based)
        self.progress = asyncio.Condition()
        self.fail_calls: set[int] = set()  # call numbers (1-based) that fail

    async def send(self, items: list[str]) -> Rows:
        self.calls.append(list(items))
        number = len(self.calls)
        async with self.progress:
            await self.progress.wait_for(lambda: self.release.is_set() or number in self.answered)
        if number in self.fail_calls:
            raise RuntimeError("model failed")
        values = np.array([int(item.removeprefix("t")) for item in items])
        return values, np.full(len(items), number)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_lone_call_goes_at_once_with_its_own_items() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        await answer_all(model)
        values, _ = await coalescer.run("m", ["t1", "t2"], model.send, depth=1, max_items=32)
        assert values.tolist() == [1, 2]
        assert model.calls == [["t1", "t2"]]
        assert coalescer._lanes == {}  # nothing left behind

    asyncio.run(run())


def test_calls_arriving_while_one_is_in_flight_leave_together() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        first = asyncio.ensure_future(coalescer.run("m", ["t0"], model.send, 1, 32))
        await settle()
        others = [
            asyncio.ensure_future(coalescer.run("m", [f"t{i}", f"t{i + 100}"], model.send, 1, 32))
            for i in range(1, 6)
        ]
        await settle()
        assert model.calls == [["t0"]]  # the rest wait in the frontend
        await answer_all(model)
        results = await asyncio.gather(first, *others)
        assert model.calls[1] == [item for i in range(1, 6) for item in (f"t{i}", f"t{i + 100}")]
        assert len(model.calls) == 2
        assert results[0][0].tolist() == [0]
        for i, (values, call) in enumerate(results[1:], start=1):
            assert values.tolist() == [i, i + 100]  # each caller its own rows, in order
            assert call.tolist() == [2, 2]
        assert coalescer.merged_calls == 1
        assert coalescer._lanes == {}

    asyncio.run(run())


def test_room_in_flight_is_used_and_keys_do_not_mix() -> None:
    """With depth 2: a call to an idle model goes at once; one arriving while it runs goes
    too (there is room), with whatever arrived in the same turn of the loop; later ones
    wait for an answer. Another key has its own lane."""

    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        tasks = [asyncio.ensure_future(coalescer.run("a", ["t0"], model.send, 2, 32))]
        await settle()
        assert model.calls == [["t0"]]
        tasks += [
            asyncio.ensure_future(coalescer.run("a", [f"t{i}"], model.send, 2, 32)) for i in (1, 2)
        ]
        tasks.append(asyncio.ensure_future(coalescer.run("b", ["t9"], model.send, 2, 32)))
        await settle()
        assert sorted(model.calls) == [["t0"], ["t1", "t2"], ["t9"]]
        tasks += [
            asyncio.ensure_future(coalescer.run("a", [f"t{i}"], model.send, 2, 32)) for i in (3, 4)
        ]
        await settle()
        assert len(model.calls) == 3  # lane "a" is full: they wait
        await answer(model, 1)
        await settle()
        assert model.calls[3] == ["t3", "t4"]  # the answer to t0 made room
        await answer_all(model)
        results = await asyncio.gather(*tasks)
        assert [r[0].tolist() for r in results] == [[0], [1], [2], [9], [3], [4]]
        assert coalescer._lanes == {}

    asyncio.run(run())


def test_a_merged_request_holds_at_most_max_items() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        first = asyncio.ensure_future(coalescer.run("m", ["t0"], model.send, 1, 4))
        await settle()
        sizes = [3, 1, 2, 4, 1]
        waiting = [
            asyncio.ensure_future(
                coalescer.run("m", [f"t{n}{k}" for k in range(n)], model.send, 1, 4)
            )
            for n in sizes
        ]
        await settle()
        await answer_all(model)
        results = await asyncio.gather(first, *waiting)
        assert [len(call) for call in model.calls] == [1, 4, 2, 4, 1]
        assert [len(r[0]) for r in results[1:]] == sizes

    asyncio.run(run())


def test_a_failed_request_fails_its_callers_and_the_next_group_still_goes() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        model.fail_calls = {1, 2}  # the lone first call, then the merged one
        first = asyncio.ensure_future(coalescer.run("m", ["t0"], model.send, 1, 2))
        await settle()
        group = [
            asyncio.ensure_future(coalescer.run("m", [f"t{i}"], model.send, 1, 2)) for i in (1, 2)
        ]
        later = asyncio.ensure_future(coalescer.run("m", ["t3"], model.send, 1, 2))
        await settle()
        await answer_all(model)
        outcomes = await asyncio.gather(first, *group, later, return_exceptions=True)
        assert model.calls == [["t0"], ["t1", "t2"], ["t3"]]
        for outcome in outcomes[:3]:  # each caller of a failed request sees its error
            assert isinstance(outcome, RuntimeError) and str(outcome) == "model failed"
        assert outcomes[3][0].tolist() == [3]  # type: ignore[index]
        assert coalescer._lanes == {}

    asyncio.run(run())


def test_a_caller_cancelled_while_waiting_is_left_out() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        first = asyncio.ensure_future(coalescer.run("m", ["t0"], model.send, 1, 32))
        await settle()
        gone = asyncio.ensure_future(coalescer.run("m", ["t1"], model.send, 1, 32))
        kept = asyncio.ensure_future(coalescer.run("m", ["t2"], model.send, 1, 32))
        await settle()
        gone.cancel()
        await settle()
        await answer_all(model)
        assert (await first)[0].tolist() == [0]
        assert (await kept)[0].tolist() == [2]
        assert gone.cancelled()
        assert model.calls == [["t0"], ["t2"]]
        assert coalescer._lanes == {}

    asyncio.run(run())


def test_a_caller_cancelled_in_flight_does_not_disturb_the_others() -> None:
    async def run() -> None:
        model, coalescer = Model(), Coalescer[str]()
        first = asyncio.ensure_future(coalescer.run("m", ["t0"], model.send, 1, 32))
        await settle()
        group = [
            asyncio.ensure_future(coalescer.run("m", [f"t{i}"], model.send, 1, 32)) for i in (1, 2)
        ]
        await settle()
        await answer(model, 1)
        await first
        await settle()  # the group is in flight now
        assert model.calls == [["t0"], ["t1", "t2"]]
        group[0].cancel()
        await answer(model, 2)
        assert (await group[1])[0].tolist() == [2]
        assert group[0].cancelled()
        assert coalescer._lanes == {}

    asyncio.run(run())
