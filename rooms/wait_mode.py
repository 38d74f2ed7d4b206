"""Wait mode (issue 16): the room waits at each expected note or chord until it is played.

As in Synthesia's "Melody Practice" / Flowkey's wait mode: the piece does not
run on a clock. The player's part is a list of *chords* (its notes grouped by
onset tick; a single note is a chord of one). The room waits at the current
chord until each of its pitches has been played, in any order; then it goes on
at the room tempo to the next chord, and waits there. Timing is not judged,
only pitch accuracy and the time waited. Times are ms from ``start_at``, on
the room's grid (the file's times scaled to the room tempo).

* A note-on of a pitch the current chord still needs is ``matched``; any
  other note-on is a ``wrong_pitch`` (after the last chord: ``extra``).
* The room *reaches* chord k at ``due_k``: chord 0's grid time, then
  ``done_{k-1} + (grid_k - grid_{k-1})`` (it goes on at the tempo from where
  the player completed the previous chord). ``waited_k = max(0, done_k - due_k)``.

:class:`WaitScorer` scores one human player; :class:`WaitFollower` plays a
computer partner's part in step with a :class:`WaitScorer`: an onset at or
after the human's chord k is played once the human completed chord k, at
``done_k + (its grid time - grid_k)`` (its onsets before the human's first
chord at their grid times); so the partner waits too.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from rooms.following import Cue
from rooms.notes import Note


@dataclass(frozen=True, slots=True)
class Chord:
    """The notes of a part that start together: score ``tick``, ``grid_ms`` on the room
    grid (ms from ``start_at``), ``onset_beat`` (quarter notes), MIDI ``pitches``."""

    tick: int
    grid_ms: float
    onset_beat: float
    pitches: tuple[int, ...]
    length_ms: float  # the longest of its notes, on the grid


def chords(notes: Sequence[Note], time_scale: float) -> list[Chord]:
    """``notes`` grouped by onset tick, in score order (``time_scale``: room s per file s)."""
    scale = time_scale * 1000.0
    ordered = sorted(notes, key=lambda n: (n.onset_tick, n.pitch))
    out = []
    for tick, group in groupby(ordered, key=lambda n: n.onset_tick):
        g = list(group)
        out.append(
            Chord(
                tick,
                g[0].onset_s * scale,
                g[0].onset_beat,
                tuple(n.pitch for n in g),
                max((n.offset_s - n.onset_s) * scale for n in g),
            )
        )
    return out


class WaitScorer:
    """One player in wait mode (see module). Feed :meth:`note_on` (ms from ``start_at``);
    ``listeners`` are called with the scorer each time a chord is completed."""

    def __init__(self, notes: Sequence[Note], *, time_scale: float, tempo_bpm: float) -> None:
        self.chords = chords(notes, time_scale)
        self.tempo_bpm = tempo_bpm
        self.index = 0
        self._remaining: Counter[int] = Counter(self.chords[0].pitches if self.chords else ())
        self.due_ms = self.chords[0].grid_ms if self.chords else 0.0
        self.done_ms: list[float] = []
        self.waits_ms: list[float] = []
        self.notes_expected = sum(len(c.pitches) for c in self.chords)
        self.notes_played = self.notes_matched = self.wrong_pitch = self.extra = 0
        self.note_offs = 0
        self.listeners: list[Callable[[WaitScorer], None]] = []

    @property
    def done(self) -> bool:
        """Every chord has been played."""
        return self.index >= len(self.chords)

    def note_on(self, pitch: int, t_ms: float) -> str:
        """Score one note-on: ``"matched"``, ``"wrong_pitch"`` or ``"extra"``."""
        self.notes_played += 1
        if self.done:
            self.extra += 1
            return "extra"
        if self._remaining[pitch] <= 0:
            self.wrong_pitch += 1
            return "wrong_pitch"
        self._remaining[pitch] -= 1
        self.notes_matched += 1
        if not +self._remaining:
            self._complete(t_ms)
        return "matched"

    def note_off(self, pitch: int, t_ms: float) -> None:
        """A note-off (not scored)."""
        self.note_offs += 1

    def _complete(self, t_ms: float) -> None:
        chord = self.chords[self.index]
        self.done_ms.append(t_ms)
        self.waits_ms.append(max(0.0, t_ms - self.due_ms))
        self.index += 1
        if not self.done:
            nxt = self.chords[self.index]
            self.due_ms = t_ms + (nxt.grid_ms - chord.grid_ms)
            self._remaining = Counter(nxt.pitches)
        for listener in list(self.listeners):
            listener(self)

    def end_ms(self) -> float | None:
        """When the last chord has sounded (ms from ``start_at``), ``None`` until it is played."""
        if not self.done or not self.chords:
            return None if self.chords else 0.0
        return self.done_ms[-1] + self.chords[-1].length_ms

    def position(self) -> dict[str, Any]:
        """Where the room waits: ``{"chord"`` (0-based), ``"chords"``, ``"onset_beat"``,
        ``"pitches"`` (still to play), ``"due_ms"`` (ms from ``start_at``),
        ``"waited_ms"`` (at the chord just completed, or ``None``)``}``; ``chord`` equals
        ``chords`` when done."""
        chord = None if self.done else self.chords[self.index]
        return {
            "chord": self.index,
            "chords": len(self.chords),
            "onset_beat": None if chord is None else round(chord.onset_beat, 6),
            "pitches": sorted(self._remaining.elements()) if chord is not None else [],
            "due_ms": None if chord is None else round(self.due_ms, 3),
            "waited_ms": round(self.waits_ms[-1], 3) if self.waits_ms else None,
        }

    def result(self, *, final: bool = False, complete: bool = True) -> dict[str, Any]:
        """The player's result (JSON-ready): counts as :meth:`rooms.scoring.Scorer.result`
        (``missed`` = notes of chords not reached, when final), ``accuracy`` (matched /
        expected), ``pitch_accuracy`` (matched / (matched + wrong_pitch), ``None`` before a
        note), ``chords``/``chords_played``, the waits (ms: ``wait_total_ms``,
        ``wait_mean_ms``, ``wait_max_ms``, ``waits_ms`` per chord) and ``"mode": "wait"``;
        no timing fields (timing is not judged)."""
        tried = self.notes_matched + self.wrong_pitch
        waits = self.waits_ms
        return {
            "mode": "wait",
            "notes_expected": self.notes_expected,
            "notes_played": self.notes_played,
            "notes_matched": self.notes_matched,
            "wrong_pitch": self.wrong_pitch,
            "extra": self.extra,
            "missed": self.notes_expected - self.notes_matched if final else 0,
            "accuracy": round(self.notes_matched / self.notes_expected, 6)
            if self.notes_expected
            else 0.0,
            "pitch_accuracy": round(self.notes_matched / tried, 6) if tried else None,
            "chords": len(self.chords),
            "chords_played": self.index,
            "wait_total_ms": round(sum(waits), 3),
            "wait_mean_ms": round(sum(waits) / len(waits), 3) if waits else None,
            "wait_max_ms": round(max(waits), 3) if waits else None,
            "waits_ms": [round(w, 3) for w in waits],
            "tempo_bpm": self.tempo_bpm,
            "tempo_bpm_played": None,
            "complete": complete,
        }


@dataclass(frozen=True, slots=True)
class _Onset:
    tick: int
    grid_ms: float
    notes: tuple[tuple[int, int, float], ...]  # (pitch, velocity, length on the grid, ms)


class WaitFollower:
    """A computer partner in wait mode, in step with ``human`` (see module).

    The interface of :class:`rooms.following.Follower` that
    ``server/realtime/partners.py`` drives: :meth:`due`, :meth:`next_wake`,
    :meth:`release`, :meth:`set_latency`, :meth:`stats`; times in ms from ``start_at``.
    """

    IDLE_MS = 3_600_000.0  # next_wake while it waits for the human (a note wakes it)

    def __init__(self, notes: Sequence[Note], *, human: WaitScorer, time_scale: float) -> None:
        scale = time_scale * 1000.0
        ordered = sorted(notes, key=lambda n: (n.onset_tick, n.pitch))
        self._onsets = [
            _Onset(
                tick,
                g[0].onset_s * scale,
                tuple((n.pitch, n.velocity, (n.offset_s - n.onset_s) * scale) for n in g),
            )
            for tick, g in ((t, list(grp)) for t, grp in groupby(ordered, lambda n: n.onset_tick))
        ]
        self.human = human
        self._ticks = [c.tick for c in human.chords]
        self._cursor = 0
        self._offs: list[tuple[float, int, int]] = []
        self._last = 0.0
        self.lead_ms = 0.0
        self.played = self.waits = 0

    def set_latency(self, rtt_ms: float | None) -> None:
        """Timing is not judged in wait mode: the partner does not aim early."""

    def _time_of(self, onset: _Onset) -> float | None:
        """When to play ``onset`` (ms), ``None`` while the human has not reached it."""
        human = self.human
        k = bisect.bisect_right(self._ticks, onset.tick) - 1  # the human's chord at or before
        if k < 0:
            return onset.grid_ms
        if k >= human.index:
            return None
        return human.done_ms[k] + (onset.grid_ms - human.chords[k].grid_ms)

    @property
    def done(self) -> bool:
        return self._cursor >= len(self._onsets) and not self._offs

    def next_wake(self) -> float | None:
        """When :meth:`due` has something to send (ms), ``None`` when done."""
        times = [self._offs[0][0]] if self._offs else []
        if self._cursor < len(self._onsets):
            at = self._time_of(self._onsets[self._cursor])
            times.append(self._last + self.IDLE_MS if at is None else at)
        return min(times) if times else None

    def due(self, now_ms: float) -> list[Cue]:
        """The events to send at ``now_ms`` (ms), in order; stamps never go back."""
        out: list[Cue] = []
        while self._offs and self._offs[0][0] <= now_ms:
            off, pitch, tick = heapq.heappop(self._offs)
            out.append(Cue("off", pitch, 64, max(off, self._last), tick))
        while self._cursor < len(self._onsets):
            onset = self._onsets[self._cursor]
            at = self._time_of(onset)
            if at is None:
                self.waits += not out
                break
            if at > now_ms:
                break
            self._cursor += 1
            stamp = max(now_ms, self._last)
            for pitch, velocity, length in onset.notes:
                for i, (_, held, tick) in enumerate(self._offs):
                    if held == pitch:  # re-struck: release it first
                        out.append(Cue("off", pitch, 64, stamp, tick))
                        self._offs.pop(i)
                        heapq.heapify(self._offs)
                        break
                out.append(Cue("on", pitch, velocity, stamp, onset.tick))
                heapq.heappush(self._offs, (stamp + max(10.0, length - 20.0), pitch, onset.tick))
            self.played += 1
        if out:
            self._last = max(self._last, max(c.t_ms for c in out))
        return out

    def release(self, now_ms: float) -> list[Cue]:
        """Note-offs for every sounding note (the partner is stopped)."""
        stamp = max(now_ms, self._last)
        cues = [Cue("off", pitch, 64, stamp, tick) for _, pitch, tick in sorted(self._offs)]
        self._offs.clear()
        self._cursor = len(self._onsets)
        return cues

    def stats(self) -> dict[str, int]:
        """``{"onsets", "played", "waits"}`` (counts)."""
        return {"onsets": len(self._onsets), "played": self.played, "waits": self.waits}
