"""frontend.triton.cohorts: requests that arrive while a generating model is busy leave
together once the running cohort ends and its clients are back, so Triton batches them whole."""

from __future__ import annotations

import asyncio
import time

import pytest

from frontend.triton.cohorts import Cohorts

SIZE = 8


class Model:
    """A one-instance model whose cohorts run `seconds` each; records who ran together."""

    def __init__(self, cohorts: Cohorts, seconds: float = 0.2) -> None:
        self.cohorts = cohorts
        self.seconds = seconds
        self.running = 0
        self.batches: list[int] = []  # requests running together at each start

    async def request(self, decoding: float | None = None) -> None:
        if decoding is None:
            await self.run()
            return
        with self.cohorts.arriving_request():  # as the HTTP layer counts it, from its first byte
            await asyncio.sleep(decoding)  # its body read, its images decoded
            await self.run()

    async def run(self) -> None:
        async with self.cohorts.slot("vlm", 1, SIZE):
            self.running += 1
            self.batches.append(self.running)
            await asyncio.sleep(self.seconds)
            self.running -= 1


async def settled(cohorts: Cohorts) -> bool:
    """Whether the lane is gone once the wait for clients that never came back is over."""
    await asyncio.sleep(1.0)
    return not cohorts._lanes


async def clients(
    model: Model, count: int, requests: int, think: float = 0.0, stagger: float = 0.0
) -> None:
    async def client(index: int) -> None:
        await asyncio.sleep(index * stagger)
        for _ in range(requests):
            await model.request()
            await asyncio.sleep(think)  # the client reads its answer, prepares the next

    await asyncio.gather(*(client(i) for i in range(count)))


def test_a_lone_client_never_waits() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)

    async def main() -> tuple[float, bool]:
        model = Model(cohorts, seconds=0.05)
        started = time.monotonic()
        await clients(model, 1, 5)
        return time.monotonic() - started, await settled(cohorts)

    elapsed, gone = asyncio.run(main())
    # five 50 ms requests back to back; a wait for an absent second client would add 5 s
    assert elapsed < 4.0
    assert cohorts.released == [1] * 5
    assert gone


def test_eight_clients_run_as_one_batch_not_two_alternating_halves() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts)

    async def main() -> bool:
        # the first request runs alone (the model was idle); the other seven queue behind it
        # and leave with its client once it is back, then all eight go round together
        await clients(model, 8, 4, think=0.01, stagger=0.01)
        return await settled(cohorts)

    assert asyncio.run(main())
    assert cohorts.released[:4] == [1, 8, 8, 8]
    assert sum(cohorts.released) == 32
    assert max(model.batches) == SIZE


def test_a_burst_to_an_idle_model_leaves_as_one_cohort_once_decoded() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts, seconds=0.1)

    async def main() -> bool:
        # eight requests at once, their images decoded one after another (the first is ready
        # long before the last): Triton's queue delay alone would batch them 1 + 7 or worse
        await asyncio.gather(*(model.request(decoding=0.02 * i) for i in range(SIZE)))
        return await settled(cohorts)

    assert asyncio.run(main())
    assert cohorts.released == [SIZE]
    assert model.batches[-1] == SIZE


def test_a_lone_decoding_client_never_waits() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts, seconds=0.05)

    async def main() -> float:
        started = time.monotonic()
        for _ in range(4):
            await model.request(decoding=0.01)
        return time.monotonic() - started

    assert asyncio.run(main()) < 4.0  # a wait for arrivals that never come would take 5 s
    assert cohorts.released == [1] * 4


def test_requests_on_their_way_are_waited_for_only_until_the_settle_time() -> None:
    cohorts = Cohorts(max_settle=0.3, share=1.0)
    model = Model(cohorts, seconds=0.05)

    async def main() -> None:
        slow = asyncio.ensure_future(model.request(decoding=6.0))  # a huge image
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.wait_for(model.request(decoding=0.0), 30)
        assert time.monotonic() - started < 4.0  # went after the settle time, not the slow one
        await asyncio.wait_for(slow, 30)

    asyncio.run(main())
    assert cohorts.released == [1, 1]


def test_requests_arriving_together_leave_together() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts, seconds=0.1)

    async def main() -> None:  # one REST request's images, each its own Triton request
        await asyncio.gather(*(model.request() for _ in range(5)))

    asyncio.run(main())
    assert cohorts.released == [5]


def test_a_cohort_takes_at_most_the_batch_size() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts, seconds=0.1)

    async def main() -> None:
        await asyncio.gather(*(model.request() for _ in range(1 + SIZE + 3)))

    asyncio.run(main())
    assert cohorts.released == [SIZE, 4]
    assert max(model.batches) == SIZE


def test_clients_that_do_not_come_back_are_waited_for_only_until_the_settle_time() -> None:
    cohorts = Cohorts(max_settle=0.3, share=10.0)
    model = Model(cohorts, seconds=0.1)

    async def main() -> bool:
        first = asyncio.ensure_future(model.request())  # runs alone
        await asyncio.sleep(0)
        second = asyncio.ensure_future(model.request())  # waits; the first client never returns
        await asyncio.wait_for(asyncio.gather(first, second), 30)
        return await settled(cohorts)

    assert asyncio.run(main())
    assert cohorts.released == [1, 1]


def test_a_cancelled_waiter_frees_its_place() -> None:
    cohorts = Cohorts(max_settle=5.0, share=1.0)
    model = Model(cohorts, seconds=0.2)

    async def main() -> bool:
        first = asyncio.ensure_future(model.request())
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(model.request())
        kept = asyncio.ensure_future(model.request())
        await asyncio.sleep(0.05)
        gone.cancel()  # the client disconnected while it waited
        with pytest.raises(asyncio.CancelledError):
            await gone
        await asyncio.wait_for(asyncio.gather(first, kept), 30)
        return await settled(cohorts)

    assert asyncio.run(main())
    assert cohorts.released == [1, 1]


def test_a_failing_request_ends_its_cohort_too() -> None:
    cohorts = Cohorts(max_settle=0.2, share=1.0)

    async def failing() -> None:
        async with cohorts.slot("vlm", 1, SIZE):
            await asyncio.sleep(0.01)
            raise RuntimeError("inference failed")

    async def main() -> None:
        results = await asyncio.gather(*(failing() for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(failing(), 30)  # the lane is free again

    asyncio.run(main())
    assert cohorts.released == [3, 1]


def test_a_wait_left_by_a_closed_event_loop_does_not_hold_the_next_request() -> None:
    cohorts = Cohorts(max_settle=0.2, share=10.0)
    model = Model(cohorts, seconds=0.05)
    asyncio.run(model.request())  # ends waiting for its client; that loop then closes
    time.sleep(0.3)

    async def again() -> None:
        await asyncio.wait_for(model.request(), 30)

    asyncio.run(again())
    assert cohorts.released == [1, 1]


def test_a_request_that_fails_before_its_model_is_not_waited_for() -> None:
    cohorts = Cohorts(max_settle=10.0, share=1.0)
    model = Model(cohorts, seconds=0.05)

    async def refused() -> None:
        with cohorts.arriving_request():
            await asyncio.sleep(0.2)
            raise ValueError("bad image")  # answered 400: it never reaches a slot

    async def main() -> float:
        failing = asyncio.ensure_future(refused())
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.wait_for(model.request(decoding=0.0), 30)
        with pytest.raises(ValueError):
            await failing
        return time.monotonic() - started

    assert asyncio.run(main()) < 5.0  # went when the other request ended, not after 10 s
    assert cohorts.arriving == 0
    assert cohorts.released == [1]
