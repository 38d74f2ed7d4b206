"""server.services.heap: the startup heap frozen, the young generation's threshold raised."""

from __future__ import annotations

import gc

from server.services.heap import GEN0_THRESHOLD, freeze_startup_heap


def test_freeze_startup_heap():
    before = gc.get_threshold()
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GEN0_THRESHOLD, before[1], before[2])
        cycle: list = []
        cycle.append(cycle)  # made after the freeze: still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
