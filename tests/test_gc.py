"""What the service asks of Python's garbage collector once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.server import GC_THRESHOLDS, exempt_startup_from_gc


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as the rest of the suite had it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_startup_is_frozen_and_young_objects_are_collected_less_often(collector: None) -> None:
    """What start-up built is out of every collection's sight, and collections come
    rarer than Python's defaults: sends waiting for their turn are thousands of young
    objects, and each collection promoted them and walked them again."""
    built_at_startup = [object(), {}]  # a container the collector tracks
    exempt_startup_from_gc()
    assert gc.get_freeze_count() > 0
    assert not any(obj is built_at_startup for obj in gc.get_objects())
    assert gc.get_threshold() == GC_THRESHOLDS
    young, middle, old = GC_THRESHOLDS
    assert young > 700 and (middle, old) == (10, 10)  # Python's defaults: 700, 10, 10
