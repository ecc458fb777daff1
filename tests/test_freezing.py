"""GC_FREEZE: what the streams allocated is frozen, and no garbage with it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pgsse.freezing import Freezer


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    """No automatic collection during the test (it could free the garbage by chance), and
    nothing left frozen after it."""
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


def garbage_in_the_oldest_generation() -> weakref.ref[Node]:
    """A cycle that survived a full collection while in use (a page's request and its
    response, say), then became garbage: a full collection frees it, nothing else."""
    node = Node()
    gc.collect()  # node is alive: it moves to the oldest generation
    return weakref.ref(node)


@pytest.mark.usefixtures("collector")
def test_a_freeze_pins_no_cyclic_garbage() -> None:
    garbage = garbage_in_the_oldest_generation()
    assert garbage() is not None  # unreachable, waiting for a full collection
    Freezer(every=1).opened()
    gc.collect()  # frozen objects are never collected: freed only if it was not frozen
    assert garbage() is None


@pytest.mark.usefixtures("collector")
def test_what_is_alive_at_a_freeze_is_frozen_every_so_many_streams() -> None:
    freezer = Freezer(every=3)
    before = gc.get_freeze_count()
    freezer.opened()
    freezer.opened()
    assert gc.get_freeze_count() == before
    alive = [Node() for _ in range(100)]
    freezer.opened()
    assert gc.get_freeze_count() >= before + len(alive)
