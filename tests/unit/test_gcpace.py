"""The collector's pace (server/gcpace.py): start-up objects frozen, the young generation
collected every YOUNG allocations, the other thresholds as they were."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from callbox.server.gcpace import YOUNG, pace


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_pace_freezes_start_up_and_collects_the_young_less_often() -> None:
    _, middle, old = gc.get_threshold()
    line = pace()
    assert gc.get_threshold() == (YOUNG, middle, old)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # this process's modules, classes and functions at least
    assert line == (
        f"gc: young objects collected every {YOUNG} allocations, {frozen} start-up objects frozen"
    )
