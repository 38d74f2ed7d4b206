"""An exact moving-window counter for the per-connection limits (no I/O, no threads).

:class:`MovingWindow` keeps, per (limit, key), the hits of the last window
length as ``[time, cost]`` entries in a ``collections.deque``, oldest first,
and their running total. A hit of ``cost`` at time ``now`` is allowed when
the hits in ``(now - window, now]`` plus ``cost`` do not exceed the limit's
count; allowed hits are recorded, refused ones are not. The semantics are
those of ``limits``' ``MovingWindowRateLimiter`` (an entry counts while
``atime >= now - window``; ``cost > count`` is always refused; the refusing
window has room again ``window`` after its oldest entry); only the
structure differs. The library's in-memory storage inserts each hit at the
front of a Python list (``list[:0] = ...``, O(entries in the window): up to
3 000 at the default note quota) under a lock, and walks every key to free
expired ones; here a hit drops expired entries from the left and appends on
the right (amortised O(1)), and a ``notes`` batch is one entry.

Profiled under the relay benchmark (``loadtests/bench/relay.py``, py-spy):
see ``loadtests/README.md``, "Speed, round 2".
"""

from __future__ import annotations

import time
from collections import deque

from limits import RateLimitItem

SWEEP_EVERY_S = 1.0  # how often keys with no live entry are dropped (frees closed connections)


class _Window:
    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[list] = deque()  # [monotonic s, cost], oldest first
        self.total = 0


class MovingWindow:
    """Exact moving windows per ``(item, scope, key)`` (see module). Times: ``time.monotonic()``."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[int, str, str], _Window] = {}
        self._expiry: dict[int, float] = {}  # id(item) → its window length, s
        self._next_sweep = 0.0

    def hit(self, item: RateLimitItem, scope: str, key: str, cost: int = 1) -> float | None:
        """Take ``cost`` from ``item``'s window for ``key``.

        Returns ``None`` when allowed (and recorded), else the seconds until
        the window's oldest entry leaves it (``limits``' ``reset_time - now``:
        the window's length when it is empty and ``cost`` exceeds its count).
        """
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        length = item.get_expiry()
        count = item.amount
        window = self._windows.get((id(item), scope, key))
        if window is None:
            window = self._windows[(id(item), scope, key)] = _Window()
            self._expiry[id(item)] = length
        entries = window.entries
        start = now - length
        while entries and entries[0][0] < start:
            window.total -= entries.popleft()[1]
        if window.total + cost > count:
            return entries[0][0] + length - now if entries else float(length)
        if entries and entries[-1][0] == now:
            entries[-1][1] += cost  # same clock reading: one entry
        else:
            entries.append([now, cost])
        window.total += cost
        return None

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_EVERY_S
        gone = [
            k
            for k, w in self._windows.items()
            if not w.entries or w.entries[-1][0] < now - self._expiry[k[0]]
        ]
        for k in gone:
            del self._windows[k]

    def __len__(self) -> int:
        """Keys held (for tests: closed connections' keys are dropped by the sweep)."""
        return len(self._windows)
