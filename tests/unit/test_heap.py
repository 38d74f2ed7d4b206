"""server.services.heap: the startup heap frozen, later cycles still collected."""

from __future__ import annotations

import gc

from server.services.heap import freeze_startup_heap


def test_freeze_startup_heap():
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
        cycle: list = []
        cycle.append(cycle)  # made after the freeze: still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
