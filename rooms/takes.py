"""Play along with a recorded take (issue 16): a saved player's notes as a computer partner.

A *take* is what one player played in a saved session, read from their final
result (:meth:`rooms.scoring.Scorer.result`'s per-note ``notes``): every
matched note's played onset (ms from that session's ``start_at``) and pitch,
with the length and velocity of the score's note (the result keeps neither).
Missed notes are not in the take, and neither are wrong pitches or extra notes
(the result has no time for them).

:class:`TakeFollower` replays a take at its recorded timing, scaled to the room
tempo (``t × take_bpm / room_bpm``), with the interface of
:class:`rooms.following.Follower` that ``server/realtime/partners.py`` drives.
Times are ms from the room's ``start_at``. To follow the human players
instead, :meth:`Take.as_notes` gives a :class:`rooms.following.Follower` the
take's recorded timing as its score.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rooms.errors import RoomError
from rooms.following import Cue
from rooms.notes import Note


@dataclass(frozen=True, slots=True)
class Take:
    """One player's notes of a saved session: ``events`` are ``(t_ms, pitch, velocity,
    length_ms, tick)`` at the take's tempo ``tempo_bpm``, in time order."""

    session_id: str
    user_id: str
    part: str
    tempo_bpm: float
    accuracy: float | None
    events: tuple[tuple[float, int, int, float, int], ...]

    def as_notes(self, piece_bpm: float) -> tuple[Note, ...]:
        """The take as score notes of a file at ``piece_bpm``: its recorded onsets become
        the notes' times (``t × take_bpm / piece_bpm``), so a
        :class:`rooms.following.Follower` plays the take's own timing, warped to
        follow the human players (``room:add_partner`` with ``follow: true``)."""
        scale = self.tempo_bpm / piece_bpm / 1000.0
        out = []
        for t, pitch, velocity, length, tick in self.events:
            beat = t * scale * piece_bpm / 60.0
            length_s = length * scale
            out.append(Note(pitch, velocity, t * scale, t * scale + length_s, beat, beat, tick))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """``{"session_id", "user_id", "part", "tempo_bpm", "accuracy", "notes"}``."""
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "part": self.part,
            "tempo_bpm": self.tempo_bpm,
            "accuracy": self.accuracy,
            "notes": len(self.events),
        }


def take_from_result(
    session_id: str,
    user_id: str,
    result: Mapping[str, Any],
    part_notes: Sequence[Note],
    *,
    piece_bpm: float,
) -> Take:
    """The take in ``result`` (a saved final result of part ``result["part"]``), whose
    score notes are ``part_notes`` at the file's tempo ``piece_bpm``.

    Raises ``RoomError("no_take")`` when the result has no per-note detail that fits the
    part (a free jam, a loop, wait mode, or another piece).
    """
    notes = result.get("notes")
    ordered = sorted(part_notes, key=lambda n: (n.onset_tick, n.pitch))
    tempo = result.get("tempo_bpm")
    if not isinstance(notes, list) or len(notes) != len(ordered) or not tempo:
        raise RoomError("no_take", "that player's result has no recorded notes of this part")
    scale = piece_bpm / float(tempo) * 1000.0
    events = []
    for entry, note in zip(notes, ordered, strict=True):
        if entry.get("pitch") != note.pitch:
            raise RoomError("no_take", "that player's result is of another piece")
        played = entry.get("played_ms")
        if played is not None:
            length = (note.offset_s - note.onset_s) * scale
            events.append((float(played), note.pitch, note.velocity, length, note.onset_tick))
    if not events:
        raise RoomError("no_take", "that player played no note of their part")
    events.sort()
    return Take(
        session_id,
        user_id,
        str(result.get("part")),
        float(tempo),
        result.get("accuracy"),
        tuple(events),
    )


class TakeFollower:
    """Replays ``take`` at the room tempo ``tempo_bpm`` (see module)."""

    def __init__(self, take: Take, *, tempo_bpm: float) -> None:
        ratio = take.tempo_bpm / tempo_bpm
        self._events = [
            (t * ratio, p, v, length * ratio, tick) for t, p, v, length, tick in take.events
        ]
        self._cursor = 0
        self._offs: list[tuple[float, int, int]] = []
        self._last = 0.0
        self.lead_ms = 0.0
        self.played = 0

    def set_latency(self, rtt_ms: float | None) -> None:
        """Aim early by half the humans' round trip (ms), as the follower does."""
        self.lead_ms = 0.0 if rtt_ms is None else max(0.0, rtt_ms) / 2.0

    def next_wake(self) -> float | None:
        """When :meth:`due` has something to send (ms), ``None`` when done."""
        times = [self._offs[0][0] - self.lead_ms] if self._offs else []
        if self._cursor < len(self._events):
            times.append(self._events[self._cursor][0] - self.lead_ms)
        return min(times) if times else None

    def due(self, now_ms: float) -> list[Cue]:
        """The events to send at ``now_ms``, stamped with their recorded (scaled) times."""
        out: list[Cue] = []
        horizon = now_ms + self.lead_ms
        while self._offs and self._offs[0][0] <= horizon:
            off, pitch, tick = heapq.heappop(self._offs)
            out.append(Cue("off", pitch, 64, max(off, self._last), tick))
        while self._cursor < len(self._events) and self._events[self._cursor][0] <= horizon:
            t, pitch, velocity, length, tick = self._events[self._cursor]
            self._cursor += 1
            stamp = max(t, self._last)
            for i, (_, held, held_tick) in enumerate(self._offs):
                if held == pitch:  # re-struck: release it first
                    out.append(Cue("off", pitch, 64, stamp, held_tick))
                    self._offs.pop(i)
                    heapq.heapify(self._offs)
                    break
            out.append(Cue("on", pitch, velocity, stamp, tick))
            heapq.heappush(self._offs, (stamp + max(10.0, length - 20.0), pitch, tick))
            self.played += 1
        if out:
            self._last = max(self._last, max(c.t_ms for c in out))
        return out

    def release(self, now_ms: float) -> list[Cue]:
        """Note-offs for every sounding note (the partner is stopped)."""
        stamp = max(now_ms + self.lead_ms, self._last)
        cues = [Cue("off", pitch, 64, stamp, tick) for _, pitch, tick in sorted(self._offs)]
        self._offs.clear()
        self._cursor = len(self._events)
        return cues

    def stats(self) -> dict[str, int]:
        """``{"notes", "played"}`` (counts)."""
        return {"notes": len(self._events), "played": self.played}
