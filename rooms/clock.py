"""Clock synchronisation between a client and the server clock.

The exchange is NTP's (RFC 5905, section 8): the client stamps ``t0`` when it
sends a ``clock`` request, the server stamps ``t1`` on receipt and ``t2`` when it
answers, the client stamps ``t3`` on receipt. All four are milliseconds; ``t0``
and ``t3`` on the client clock, ``t1`` and ``t2`` on the server clock.

    offset = ((t1 - t0) + (t2 - t3)) / 2     # server clock - client clock, ms
    rtt    = (t3 - t0) - (t2 - t1)           # network round-trip time, ms

Single samples are noisy (a delayed packet skews one sample), so the estimate
is the median over the most recent samples, as Ableton Link does for its
host-time filter.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One four-stamp exchange; all stamps in ms (see module docstring)."""

    t0: float
    t1: float
    t2: float
    t3: float

    def __post_init__(self) -> None:
        if self.t3 < self.t0:
            raise ValueError(f"t3 ({self.t3}) is before t0 ({self.t0}) on the client clock")
        if self.t2 < self.t1:
            raise ValueError(f"t2 ({self.t2}) is before t1 ({self.t1}) on the server clock")

    @property
    def offset_ms(self) -> float:
        """Server clock minus client clock, ms (add it to a client time)."""
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2.0

    @property
    def rtt_ms(self) -> float:
        """Network round-trip time, ms, excluding the server's processing time."""
        return (self.t3 - self.t0) - (self.t2 - self.t1)


class ClockEstimator:
    """Median offset and round-trip time over the last ``window`` samples.

    ``window`` defaults to 9 samples. Before the first sample the offset is 0 ms
    and the round-trip time ``None``.
    """

    def __init__(self, window: int = 9) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 sample, got {window}")
        self._samples: deque[ClockSample] = deque(maxlen=window)

    def add(self, sample: ClockSample) -> None:
        """Add one exchange's stamps."""
        self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def offset_ms(self) -> float:
        """Median server-minus-client offset, ms (0.0 before any sample)."""
        if not self._samples:
            return 0.0
        return statistics.median(s.offset_ms for s in self._samples)

    @property
    def rtt_ms(self) -> float | None:
        """Median round-trip time, ms, or ``None`` before any sample."""
        if not self._samples:
            return None
        return statistics.median(s.rtt_ms for s in self._samples)

    def to_server(self, client_ms: float) -> float:
        """Convert a client-clock time (ms) to the server clock (ms)."""
        return client_ms + self.offset_ms

    def to_client(self, server_ms: float) -> float:
        """Convert a server-clock time (ms) to the client clock (ms)."""
        return server_ms - self.offset_ms
