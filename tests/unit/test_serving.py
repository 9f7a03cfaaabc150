"""The server tunes the cyclic GC once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from frontend.core.serving import YOUNG_GC_THRESHOLD, settle_gc


@pytest.fixture
def unfrozen() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run keeps a normal heap
    gc.set_threshold(*threshold)


def tracked(thing: object) -> bool:
    """Whether the collections of generations 0-2 (what gc.collect walks) hold `thing`."""
    return any(candidate is thing for candidate in gc.get_objects())


def test_settle_gc_puts_start_up_objects_out_of_the_collections(unfrozen: None) -> None:
    built_at_start = {"routes": ["/api/embed"]}
    assert tracked(built_at_start)
    settle_gc()
    assert not tracked(built_at_start)
    assert gc.get_freeze_count() > 0
    built_later = {"texts": ["hello"]}
    assert tracked(built_later)  # what requests allocate is still collected


def test_settle_gc_collects_young_objects_less_often(unfrozen: None) -> None:
    older = gc.get_threshold()[1:]
    settle_gc()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *older)
