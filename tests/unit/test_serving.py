"""The server's start-up puts its heap out of the cyclic GC's full collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from frontend.core.serving import settle_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run keeps a normal heap


def tracked(thing: object) -> bool:
    """Whether the collections of generations 0-2 (what gc.collect walks) hold `thing`."""
    return any(candidate is thing for candidate in gc.get_objects())


def test_settle_heap_puts_start_up_objects_out_of_the_collections(unfrozen: None) -> None:
    built_at_start = {"routes": ["/api/embed"]}
    assert tracked(built_at_start)
    settle_heap()
    assert not tracked(built_at_start)
    assert gc.get_freeze_count() > 0
    built_later = {"texts": ["hello"]}
    assert tracked(built_later)  # what requests allocate is still collected
