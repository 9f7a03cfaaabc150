"""A browser found dead when a crawl asks it for a context is replaced once and the crawl goes
on, whether Playwright reports it (its Error) or the driver's pipe is already closed (the event
loop's RuntimeError, seen when another crawl was replacing that browser at the same moment)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError

from frontend.core.config import CrawlSection
from frontend.crawl.browser import BrowserManager, _Instance


class FakeContext:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeBrowser:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.closed = False

    def is_connected(self) -> bool:
        return True  # not noticed yet: the crash is found by the next call

    async def new_context(self, **options: Any) -> FakeContext:
        if self.error is not None:
            raise self.error
        return FakeContext()

    async def close(self) -> None:
        self.closed = True


class FakePlaywright:
    async def stop(self) -> None:
        return None


CLOSED_PIPE = RuntimeError(
    "unable to perform operation on <WriteUnixTransport closed=True>; the handler is closed"
)


@pytest.mark.parametrize("error", [CLOSED_PIPE, PlaywrightError("Target closed")])
def test_a_dead_browser_is_replaced_once_and_the_crawl_gets_its_context(error: Exception) -> None:
    manager = BrowserManager(CrawlSection())
    dead = _Instance(FakePlaywright(), FakeBrowser(error), None)  # type: ignore[arg-type]
    fresh = _Instance(FakePlaywright(), FakeBrowser(None), None)  # type: ignore[arg-type]
    manager._instance = dead
    launched: list[_Instance] = []

    async def launch() -> _Instance:
        launched.append(fresh)
        return fresh

    manager._launch = launch  # type: ignore[method-assign]

    async def scenario() -> FakeContext:
        async with manager.context() as context:
            got: Any = context
        return got

    context = asyncio.run(scenario())
    assert isinstance(context, FakeContext) and context.closed  # used, then closed
    assert launched == [fresh] and manager.current is fresh
