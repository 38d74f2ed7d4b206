"""Human-like performances of a part: what a bot plays, and what tests inject.

A performance is a list of timed note events relative to ``start_at`` on the
room's grid, with optional known deviations: a tempo ratio (the player is
slower or faster than the room), uniform onset jitter, dropped notes and
wrong pitches. The deviations are chosen from a seed, so they are repeatable
and a test knows exactly what was injected.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
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
    warp: Callable[[float], float] | None = None,
) -> list[PlannedEvent]:
    """Plan a performance of ``notes``, sorted by time.

    ``time_scale``: room seconds per file second (``piece_bpm / room_bpm``).
    ``tempo_ratio``: played tempo / room tempo (0.92 = 8 % slower).
    ``jitter_ms``: each onset moves by a uniform random amount in
    ``[-jitter_ms, +jitter_ms]``; the note keeps its length. ``warp``: a tempo
    plan (:func:`tempo_plan`), room-grid ms → played ms, applied before ``tempo_ratio``.
    """
    if tempo_ratio <= 0:
        raise ValueError(f"tempo_ratio must be positive, got {tempo_ratio}")
    rng = random.Random(seed)
    mistakes = mistakes or Mistakes()
    dropped = set(mistakes.dropped)
    wrong = dict(mistakes.wrong)
    scale = time_scale * 1000.0
    bend = warp or (lambda ms: ms)
    events: list[PlannedEvent] = []
    for i, note in enumerate(sorted_notes(notes)):
        jitter = rng.uniform(-jitter_ms, jitter_ms) if jitter_ms else 0.0
        if i in dropped:
            continue
        pitch = wrong.get(i, note.pitch)
        start, end = (
            bend(note.onset_s * scale) / tempo_ratio,
            bend(note.offset_s * scale) / tempo_ratio,
        )
        on = start + jitter
        # Release a little early so a repeated pitch's next onset is never before this offset.
        length = max(10.0, end - start - 20.0)
        events.append(PlannedEvent("on", pitch, note.velocity, on))
        events.append(PlannedEvent("off", pitch, 64, on + length))
    events.sort(key=lambda e: (e.t_ms, e.type == "on"))
    return events


def tempo_plan(
    ratio_at: Callable[[float], float], *, beat_ms: float, beats: float
) -> Callable[[float], float]:
    """A tempo plan as a time warp: room-grid ms → played ms (0 → 0).

    ``ratio_at(beat)`` is the played tempo / room tempo at a grid beat (0.85 =
    15 % slower); ``beat_ms`` the room's beat (ms); ``beats`` how far to plan
    (later times keep the last ratio). Integrates 1/ratio in 1/32-beat steps.
    """
    step = beat_ms / 32.0
    grid, played = [0.0], [0.0]
    for k in range(int(beats * 32) + 1):
        grid.append(grid[-1] + step)
        played.append(played[-1] + step / ratio_at((k + 0.5) / 32.0))
    last = 1.0 / ratio_at(beats)

    def warp(ms: float) -> float:
        if ms >= grid[-1]:
            return played[-1] + (ms - grid[-1]) * last
        k = max(0, bisect.bisect_right(grid, ms) - 1)
        return played[k] + (ms - grid[k]) / (grid[k + 1] - grid[k]) * (played[k + 1] - played[k])

    return warp


def issue_plans(beats: float) -> dict[str, Callable[[float], float]]:
    """The three tempo plans of issue 16, as ``ratio_at(beat)`` for a piece of ``beats``
    beats in 4/4: ``slower_bars`` 15 % slower for the two bars in the middle, then
    back; ``ritardando`` slowing evenly to 70 % over the last four bars; ``slower``
    8 % slower than the room all along."""
    middle = (beats // 2 // 4) * 4  # a bar line near the middle

    def slower_bars(beat: float) -> float:
        return 0.85 if middle - 4 <= beat < middle + 4 else 1.0

    def ritardando(beat: float) -> float:
        start = beats - 16
        return 1.0 if beat < start else 1.0 - 0.3 * min(1.0, (beat - start) / 16)

    return {"slower_bars": slower_bars, "ritardando": ritardando, "slower": lambda _: 0.92}
