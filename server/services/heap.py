"""The garbage collector and the startup heap (no web code).

Profiled with native frames under the relay benchmark (py-spy ``--native``,
100 duets × 10 notes/s; ``loadtests/README.md``, "Speed, round 2"), 9 % of
the event loop thread's samples were in CPython's cyclic garbage collector
(``gc_collect_main``). Note traffic allocates many short-lived objects, so
collections run often, and each full (oldest-generation) collection walks
every tracked object, most of them the startup heap: imported modules,
SQLAlchemy's and pydantic's models, the schemas. :func:`freeze_startup_heap`
moves what exists once the server has started into the collector's
permanent generation (``gc.freeze()``, Python 3.7+): never collected, never
walked again. Objects made later are collected as before, so cycles made by
traffic are still freed.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then freeze every object alive now (``gc.freeze``).

    Returns the number of objects frozen (``gc.get_freeze_count()``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
