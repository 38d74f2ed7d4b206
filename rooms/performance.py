"""Human-like performances of a part: what a bot plays, and what tests inject.

A performance is a list of timed note events relative to ``start_at`` on the
room's grid, with optional known deviations: a tempo ratio (the player is
slower or faster than the room), uniform onset jitter, dropped notes and
wrong pitches. The deviations are chosen from a seed, so they are repeatable
and a test knows exactly what was injected.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rooms.notes import PITCH_MAX, PITCH_MIN, Note


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One event to play: ``t_ms`` from ``start_at`` (ms), MIDI ``pitch``, ``velocity``."""

    type: str
    pitch: int
    velocity: int
    t_ms: float


@dataclass(frozen=True, slots=True)
class Mistakes:
    """Indices (into the part's notes sorted by onset, pitch) to drop or play wrong.

    ``wrong`` maps an index to the pitch played instead.
    """

    dropped: tuple[int, ...] = ()
    wrong: tuple[tuple[int, int], ...] = ()


def sorted_notes(notes: Sequence[Note]) -> list[Note]:
    """The order every index in this module refers to (onset tick, then pitch)."""
    return sorted(notes, key=lambda n: (n.onset_tick, n.pitch))


def choose_mistakes(
    notes: Sequence[Note],
    *,
    dropped: int = 0,
    wrong: int = 0,
    seed: int = 0,
    clearance_s: float = 1.0,
) -> Mistakes:
    """Pick ``dropped`` notes to leave out and ``wrong`` notes to play a semitone or two off.

    Mistakes avoid the first and last two notes and each other. A wrong pitch
    is chosen so that no note of the part with that pitch starts within
    ``clearance_s`` seconds (file time), so the mistake is unambiguous.
    Raises ``ValueError`` when the part is too short for the request.
    """
    ordered = sorted_notes(notes)
    candidates = list(range(2, len(ordered) - 2))
    if dropped + wrong > len(candidates) // 3:
        raise ValueError(
            f"a part of {len(ordered)} notes is too short for {dropped + wrong} mistakes"
        )
    rng = random.Random(seed)
    rng.shuffle(candidates)
    picked: list[int] = []
    for i in candidates:
        if len(picked) == dropped + wrong:
            break
        if all(abs(i - j) > 2 for j in picked):
            picked.append(i)
    if len(picked) < dropped + wrong:
        raise ValueError("could not place the mistakes apart from each other")
    wrong_pitches = []
    for i in sorted(picked[dropped:]):
        note = ordered[i]
        near = {n.pitch for n in ordered if abs(n.onset_s - note.onset_s) <= clearance_s}
        for delta in (1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6):
            pitch = note.pitch + delta
            if PITCH_MIN <= pitch <= PITCH_MAX and pitch not in near:
                wrong_pitches.append((i, pitch))
                break
        else:
            raise ValueError(f"no unambiguous wrong pitch for note {i}")
    return Mistakes(dropped=tuple(sorted(picked[:dropped])), wrong=tuple(wrong_pitches))


def humanize(
    notes: Sequence[Note],
    *,
    time_scale: float = 1.0,
    tempo_ratio: float = 1.0,
    jitter_ms: float = 0.0,
    mistakes: Mistakes | None = None,
    seed: int = 0,
) -> list[PlannedEvent]:
    """Plan a performance of ``notes``, sorted by time.

    ``time_scale``: room seconds per file second (``piece_bpm / room_bpm``).
    ``tempo_ratio``: played tempo / room tempo (0.92 = 8 % slower).
    ``jitter_ms``: each onset moves by a uniform random amount in
    ``[-jitter_ms, +jitter_ms]``; the note keeps its length.
    """
    if tempo_ratio <= 0:
        raise ValueError(f"tempo_ratio must be positive, got {tempo_ratio}")
    rng = random.Random(seed)
    mistakes = mistakes or Mistakes()
    dropped = set(mistakes.dropped)
    wrong = dict(mistakes.wrong)
    stretch = time_scale * 1000.0 / tempo_ratio
    events: list[PlannedEvent] = []
    for i, note in enumerate(sorted_notes(notes)):
        jitter = rng.uniform(-jitter_ms, jitter_ms) if jitter_ms else 0.0
        if i in dropped:
            continue
        pitch = wrong.get(i, note.pitch)
        on = note.onset_s * stretch + jitter
        # Release a little early so a repeated pitch's next onset is never before this offset.
        length = max(10.0, (note.offset_s - note.onset_s) * stretch - 20.0)
        events.append(PlannedEvent("on", pitch, note.velocity, on))
        events.append(PlannedEvent("off", pitch, 64, on + length))
    events.sort(key=lambda e: (e.t_ms, e.type == "on"))
    return events
