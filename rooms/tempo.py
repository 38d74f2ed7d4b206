"""A piece's timing: the tempo map (ticks → beats and seconds) and its time signatures.

*Ticks* are a MIDI file's integer time unit (``ticks_per_beat`` per quarter
note), *beats* are quarter notes, *seconds* are measured from tick 0 through
the tempo map; tempo is microseconds per quarter note (``us_per_beat``, what
MIDI stores) or BPM (quarter notes per minute).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

DEFAULT_US_PER_BEAT = 500_000  # 120 BPM, the MIDI default
DEFAULT_TIME_SIGNATURE = (4, 4)


@dataclass(frozen=True, slots=True)
class TempoChange:
    """Tempo from ``tick`` on: ``us_per_beat`` µs per quarter note.

    ``time_s`` is the time of ``tick`` in seconds through the tempo map.
    """

    tick: int
    time_s: float
    us_per_beat: int

    @property
    def bpm(self) -> float:
        """Quarter notes per minute."""
        return 60e6 / self.us_per_beat


@dataclass(frozen=True, slots=True)
class TimeSignature:
    """Time signature ``numerator/denominator`` from ``tick`` on."""

    tick: int
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class TempoMap:
    """Conversion from ticks to beats and seconds.

    ``changes`` is sorted by strictly increasing tick and always starts at
    tick 0; between two changes the tempo is constant.
    """

    ticks_per_beat: int
    changes: tuple[TempoChange, ...]

    def __post_init__(self) -> None:
        if self.ticks_per_beat <= 0:
            raise ValueError(f"ticks_per_beat must be positive, got {self.ticks_per_beat}")
        if not self.changes or self.changes[0].tick != 0:
            raise ValueError("a tempo map must start with a change at tick 0")
        for before, after in pairwise(self.changes):
            if after.tick <= before.tick:
                raise ValueError("tempo changes must have strictly increasing ticks")

    @classmethod
    def from_changes(cls, ticks_per_beat: int, changes: Iterable[tuple[int, int]] = ()) -> TempoMap:
        """Build a map from ``(tick, us_per_beat)`` pairs in any order.

        Pairs at the same tick: the last one wins. A change equal to the tempo
        already in force is dropped. Before the first pair the tempo is
        500000 µs per beat (120 BPM), as in MIDI.
        """
        if ticks_per_beat <= 0:
            raise ValueError(f"ticks_per_beat must be positive, got {ticks_per_beat}")
        by_tick: dict[int, int] = {0: DEFAULT_US_PER_BEAT}
        for tick, us_per_beat in sorted(changes, key=lambda pair: pair[0]):
            if tick < 0 or us_per_beat <= 0:
                raise ValueError(f"invalid tempo change at tick {tick}: {us_per_beat} us/beat")
            by_tick[tick] = us_per_beat
        built: list[TempoChange] = []
        for tick, us_per_beat in sorted(by_tick.items()):
            if built and built[-1].us_per_beat == us_per_beat:
                continue
            time_s = built[-1].time_s + _span_s(built[-1], tick, ticks_per_beat) if built else 0.0
            built.append(TempoChange(tick, time_s, us_per_beat))
        return cls(ticks_per_beat, tuple(built))

    def tick_to_seconds(self, tick: int) -> float:
        """Seconds from tick 0 to ``tick`` (a tick ≥ 0), integrating tempo changes."""
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        change = self.changes[bisect_right(self.changes, tick, key=lambda c: c.tick) - 1]
        return change.time_s + _span_s(change, tick, self.ticks_per_beat)

    def tick_to_beats(self, tick: int) -> float:
        """Quarter-note beats from tick 0 to ``tick``."""
        return tick / self.ticks_per_beat

    @property
    def initial_bpm(self) -> float:
        """Tempo at tick 0 in BPM."""
        return self.changes[0].bpm


def _span_s(change: TempoChange, tick: int, ticks_per_beat: int) -> float:
    return (tick - change.tick) * change.us_per_beat / 1e6 / ticks_per_beat


def time_signatures(found: Iterable[tuple[int, int, int]]) -> tuple[TimeSignature, ...]:
    """Changes of time signature from ``(tick, numerator, denominator)`` in any order.

    The last one at a tick wins; a repeat of the signature in force is dropped;
    4/4 at tick 0 unless one is set there.
    """
    by_tick: dict[int, tuple[int, int]] = {0: DEFAULT_TIME_SIGNATURE}
    for tick, numerator, denominator in sorted(found, key=lambda s: s[0]):
        by_tick[tick] = (numerator, denominator)
    result: list[TimeSignature] = []
    for tick, (numerator, denominator) in sorted(by_tick.items()):
        if result and (result[-1].numerator, result[-1].denominator) == (numerator, denominator):
            continue
        result.append(TimeSignature(tick, numerator, denominator))
    return tuple(result)
