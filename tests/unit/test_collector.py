"""The cyclic collector of a service process (plumbing/service.py): the heap its start-up made is frozen,
young objects are collected after 50,000 allocations, not 700."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from plumbing.service import COLLECTOR_THRESHOLDS, tune_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_the_start_up_heap_is_frozen_and_the_thresholds_raised() -> None:
    gc.unfreeze()
    kept = [[index] for index in range(1000)]  # tracked containers alive at start-up
    before = gc.get_freeze_count()
    tune_collector()
    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert COLLECTOR_THRESHOLDS[0] >= 10_000
    # what is allocated afterwards is collected as before: a cycle made now is found and freed
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
