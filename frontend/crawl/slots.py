"""Crawl slots (browser tabs at once) shared by people's own crawls and by background pages of
site crawls and batches: a free slot goes to a waiting foreground crawl first, so a scrape made
while a site crawl runs waits for at most one page to finish, not for the crawl's queue."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slots:
    def __init__(self, count: int) -> None:
        self.count = count
        self.busy = 0
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {False: deque(), True: deque()}

    def waiting(self, background: bool) -> int:
        return sum(1 for f in self._waiting[background] if not f.done())

    def _hand_over(self) -> None:
        """Give free slots to waiters: foreground ones first, each queue in order."""
        for background in (False, True):
            queue = self._waiting[background]
            while queue and self.busy < self.count:
                future = queue.popleft()
                if not future.done():
                    self.busy += 1
                    future.set_result(None)

    async def _acquire(self, background: bool) -> None:
        ahead = self.waiting(False) + (self.waiting(True) if background else 0)
        if self.busy < self.count and not ahead:
            self.busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[background].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted as it was cancelled
                self._release()
            raise

    def _release(self) -> None:
        self.busy -= 1
        self._hand_over()

    @asynccontextmanager
    async def hold(self, background: bool = False) -> AsyncIterator[None]:
        await self._acquire(background)
        try:
            yield
        finally:
            self._release()
