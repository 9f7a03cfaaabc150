"""Send concurrent requests to a generating model in cohorts, so Triton batches them whole.

A vision-language batch runs for seconds and Triton's dynamic batcher forms the next batch
from whatever waits the moment an instance frees up. With eight clients that settles into
two alternating batches of four: while one runs, the other's requests queue; when it ends,
the queued four start at once, and the four clients just answered come back a few
milliseconds too late and queue behind them, for ever (seen with tools/bench_vlm: batch 4.0
at concurrency 8, 0.77x in-process batch 8).

A `Cohorts` lane holds the requests that arrive while the model is busy and lets them go
together when a cohort finishes, after waiting (briefly) for the finished cohort's clients
to come back: until as many requests wait as the finished cohort had plus those already
waiting (capped at the model's batch size), or `settle` seconds, whichever is first. The
HTTP layer also counts the requests to generating routes that have not reached their model
yet (`arriving`: from their first byte, through their bodies and image decoding), so a burst
of requests to an idle model leaves as one cohort once all of it is ready, where Triton's
few milliseconds of queue delay would split it (a 640x480 JPEG takes ~10 ms to read and
decode; eight of them, one after another). A request to an idle model with nothing on its
way goes at once (the event loop's next turn), so a lone client never waits. Each request
is still its own Triton request (a stream of its own); they only leave together, within
Triton's queue delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

# The longest a finished cohort's clients are waited for, and at most this share of how long
# that cohort ran (a GPU's short batches wait less).
MAX_SETTLE_SECONDS = 0.5
SETTLE_SHARE = 0.1
# The routes whose requests end in a generating model's slot (frontend.core.observability
# counts them as arriving from their first byte).
GENERATING_PATHS = frozenset({"/api/caption", "/api/generate", "/api/chat", "/v1/chat/completions"})


@dataclass
class _Arrival:
    """One HTTP request on its way: it stops counting at its first slot, or when it ends."""

    cohorts: Cohorts
    done: bool = False


_arrival: ContextVar[_Arrival | None] = ContextVar("cohort_arrival", default=None)


@dataclass
class _Cohort:
    size: int
    started: float = field(default_factory=time.monotonic)
    remaining: int = 0

    def __post_init__(self) -> None:
        self.remaining = self.size


@dataclass
class _Lane:
    key: Hashable
    depth: int  # cohorts in flight at once (the model's instances)
    size: int  # the model's batch size: the most one cohort takes
    running: int = 0
    waiting: list[asyncio.Future[_Cohort]] = field(default_factory=list)
    expected: int = 0  # requests to wait for before the next release (0: none)
    timer: asyncio.TimerHandle | None = None
    deadline: float = 0.0  # monotonic time the wait for `expected` ends
    since: float = 0.0  # monotonic time that wait began
    scheduled: bool = False


class Cohorts:
    def __init__(self, max_settle: float = MAX_SETTLE_SECONDS, share: float = SETTLE_SHARE) -> None:
        self.max_settle, self.share = max_settle, share
        self._lanes: dict[Hashable, _Lane] = {}
        self.arriving = 0  # HTTP requests to generating routes not at a slot yet
        self.released: list[int] = []  # the sizes of the last 64 cohorts let go (tests)

    def _lane(self, key: Hashable) -> _Lane:
        lane = self._lanes.get(key)
        if lane is not None and lane.timer is not None and time.monotonic() >= lane.deadline:
            self._release(lane)  # the wait is over (its timer may not have run yet)
            lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key, 1, 1)
        return lane

    @contextmanager
    def arriving_request(self) -> Iterator[None]:
        """Count an HTTP request to a generating route (GENERATING_PATHS) as on its way until
        its first slot or its end: requests waiting at an idle model wait for it (at most
        `max_settle`)."""
        arrival = _Arrival(self)
        self.arriving += 1
        token = _arrival.set(arrival)
        try:
            yield
        finally:
            _arrival.reset(token)
            self._arrived(arrival)

    def _arrived(self, arrival: _Arrival) -> None:
        if arrival.done:
            return
        arrival.done = True
        self.arriving -= 1
        for lane in list(self._lanes.values()):
            if lane.waiting:
                self._check(lane)
            elif not lane.running and lane.timer is None:
                self._drop(lane)

    @asynccontextmanager
    async def slot(self, key: Hashable, depth: int, size: int) -> AsyncIterator[None]:
        """Hold the caller until its cohort leaves; the body is its Triton request."""
        arrival = _arrival.get()
        if arrival is not None and arrival.cohorts is self:
            self._arrived(arrival)  # this request is here: no one waits for it any more
        lane = self._lane(key)
        lane.depth, lane.size = max(1, depth), max(1, size)  # a reloaded config applies
        # At an idle model with nothing on its way this is the event loop's next turn, with
        # whatever else arrived in this one (one request's several images leave together).
        cohort = await self._wait(lane)
        try:
            yield
        finally:
            cohort.remaining -= 1
            if not cohort.remaining:
                self._finished(lane, cohort)

    def _start(self, lane: _Lane, size: int) -> _Cohort:
        lane.running += 1
        self.released.append(size)
        del self.released[:-64]
        return _Cohort(size)

    async def _wait(self, lane: _Lane) -> _Cohort:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Cohort] = loop.create_future()
        lane.waiting.append(future)
        self._check(lane)
        try:
            return await future
        except asyncio.CancelledError:
            if future in lane.waiting:
                lane.waiting.remove(future)
            elif future.done() and not future.cancelled():
                cohort = future.result()  # released as it was cancelled: give its place up
                cohort.remaining -= 1
                if not cohort.remaining:
                    self._finished(lane, cohort)
            raise

    def _check(self, lane: _Lane) -> None:
        """Release once the lane has a whole batch, or waits for no one more (the clients of
        the cohort that ended are back, and no request is on its way); else wait, at most
        the settle time."""
        if lane.scheduled or lane.running >= lane.depth:
            return  # (a busy model: the cohort that ends next checks again)
        back = len(lane.waiting) >= lane.expected
        if len(lane.waiting) >= lane.size or (back and not self.arriving):
            self._schedule(lane)
        elif lane.timer is None:  # wait for them, not for ever
            self._wait_at_most(lane, self.max_settle)
        elif self.arriving and lane.deadline < lane.since + self.max_settle:
            # requests on their way: a shorter wait (for returning clients) grows to max_settle
            self._wait_at_most(lane, lane.since + self.max_settle - time.monotonic())

    def _wait_at_most(self, lane: _Lane, seconds: float) -> None:
        if lane.timer is None:
            lane.since = time.monotonic()  # a wait begins
        else:
            lane.timer.cancel()
        lane.deadline = time.monotonic() + seconds
        lane.timer = asyncio.get_running_loop().call_later(seconds, self._release, lane)

    def _drop(self, lane: _Lane) -> None:
        if self._lanes.get(lane.key) is lane:
            self._lanes.pop(lane.key)

    def _schedule(self, lane: _Lane) -> None:
        if not lane.scheduled:
            lane.scheduled = True
            asyncio.get_running_loop().call_soon(self._release, lane)

    def _finished(self, lane: _Lane, cohort: _Cohort) -> None:
        lane.running -= 1
        lane.expected = min(lane.size, lane.expected + cohort.size + len(lane.waiting))
        settle = min(self.max_settle, self.share * (time.monotonic() - cohort.started))
        if settle <= 0:
            self._schedule(lane)
        else:  # (another cohort's wait, if any, now waits for this one's clients as well)
            self._wait_at_most(lane, settle)
            self._check(lane)

    def _release(self, lane: _Lane) -> None:
        """Let the waiting requests go, a cohort of up to `size` per free instance."""
        lane.scheduled = False
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        lane.expected = 0
        while lane.running < lane.depth and lane.waiting:
            members = [f for f in lane.waiting[: lane.size] if not f.done()]
            del lane.waiting[: lane.size]
            if members:
                cohort = self._start(lane, len(members))
                for future in members:
                    future.set_result(cohort)
        if not lane.running and not lane.waiting:
            self._drop(lane)
