"""Merge concurrent inference calls for one model into fewer, larger Triton requests.

Each Triton request costs a fixed amount on top of its items (a gRPC round trip, tensor
encoding, the Python backend's per-request messaging and response objects in the stub):
on two CPU cores sixteen one-sentence embedding requests spend about a quarter of their
CPU there. A `Coalescer` sends a call at once while fewer than `depth` of its calls are in
flight to that model (a call to an idle model goes at once; calls arriving while others are
in flight leave together on the event loop's next turn if there is room, else when an
earlier request returns). There is no timer: a lone client never waits, and under load the
batch grows with the queue (continuous batching, as Infinity and TEI do in-process).
Triton's dynamic batcher still merges what several frontends send.

Results are rows: `send(items)` returns arrays whose first dimension is `len(items)`, and
each caller gets its own rows back. A failed merged call fails each of its callers with the
same error (every error here is about the model or the server, not one caller's items:
callers validate their items first); a cancelled caller's rows are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")
Rows = tuple[np.ndarray, ...]
Send = Callable[[list[Item]], Awaitable[Rows]]


@dataclass
class _Waiting(Generic[Item]):
    items: list[Item]
    future: asyncio.Future[Rows]


@dataclass
class _Lane(Generic[Item]):
    """One key's (model's) calls: how to send them, how many are in flight, and who waits."""

    key: Hashable
    send: Send[Item]
    depth: int
    max_items: int
    in_flight: int = 0
    waiting: list[_Waiting[Item]] = field(default_factory=list)
    scheduled: bool = False  # a drain is due on the loop's next turn


class Coalescer(Generic[Item]):
    def __init__(self) -> None:
        self._lanes: dict[Hashable, _Lane[Item]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.merged_calls = 0  # Triton requests that carried more than one caller's items

    async def run(
        self, key: Hashable, items: list[Item], send: Send[Item], depth: int, max_items: int
    ) -> Rows:
        """`send(items)`'s rows for these items, possibly sent together with other callers'
        items of the same `key` (at most `max_items` per request, `depth` requests in flight).
        `send` must be the same operation for every caller of one key."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key, send, depth, max_items)
        else:  # the latest caller's settings (a reloaded config) apply from here on
            lane.send, lane.depth, lane.max_items = send, depth, max_items
        if not lane.in_flight and not lane.waiting and not lane.scheduled:
            lane.in_flight += 1  # the model is idle: no one to wait for
            try:
                return await send(items)
            finally:
                lane.in_flight -= 1
                self._drain(lane)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(items, loop.create_future())
        lane.waiting.append(waiting)
        if lane.in_flight < depth and not lane.scheduled:
            # Room for another request: send it on the loop's next turn, with whatever else
            # arrived in this one (callers woken by one answer come back together)
            lane.scheduled = True
            loop.call_soon(self._drain, lane)
        try:
            return await waiting.future
        finally:
            if waiting in lane.waiting:  # cancelled while waiting: leave the queue
                lane.waiting.remove(waiting)
                waiting.future.cancel()

    def _drain(self, lane: _Lane[Item]) -> None:
        """Send what waits, in arrival order, while the lane has room."""
        lane.scheduled = False
        while lane.in_flight < lane.depth and lane.waiting:
            group: list[_Waiting[Item]] = []
            count = 0
            while lane.waiting and (
                not group or count + len(lane.waiting[0].items) <= lane.max_items
            ):
                waiting = lane.waiting.pop(0)
                if not waiting.future.done():  # not cancelled
                    group.append(waiting)
                    count += len(waiting.items)
            if not group:
                continue
            lane.in_flight += 1
            task = asyncio.ensure_future(self._send_group(lane, group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not lane.in_flight and not lane.waiting and self._lanes.get(lane.key) is lane:
            self._lanes.pop(lane.key)

    async def _send_group(self, lane: _Lane[Item], group: Sequence[_Waiting[Item]]) -> None:
        try:
            if len(group) > 1:
                self.merged_calls += 1
            rows = await lane.send([item for waiting in group for item in waiting.items])
        except BaseException as exc:  # each caller sees the error as if it had sent alone
            for waiting in group:
                if waiting.future.done():
                    continue
                if isinstance(exc, Exception):
                    waiting.future.set_exception(exc)
                else:  # cancelled (shutdown): so are its callers
                    waiting.future.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            offset = 0
            for waiting in group:
                end = offset + len(waiting.items)
                if not waiting.future.done():
                    waiting.future.set_result(tuple(array[offset:end] for array in rows))
                offset = end
        finally:
            lane.in_flight -= 1
            self._drain(lane)
