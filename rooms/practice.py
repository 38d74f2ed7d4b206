"""Practice tools (issue 16): slow down, loop a section, tempo ladder.

Pure rules; the server runs the clock (``server/realtime/practice.py``).

**Slow down.** ``tempo_pct`` (25–150 %) scales the room's base tempo (the
``tempo_bpm`` asked for, else the file's). The judgement windows scale with
it as rhythm games scale theirs with the playback rate: osu! judges its hit
windows in *track time*, so at rate ``r`` they last ``1/r`` as long in wall
clock time (osu! wiki, "Game modifier/Half Time" and "Double Time": HT at
75 % lowers the effective overall difficulty, DT at 150 % raises it).
:func:`scaled_scoring` applies that to every window of
:class:`rooms.scoring.ScoringSettings`::

    window_ms(pct) = window_ms(100 %) * 100 / pct

so a 25 ms "perfect" is 50 ms at 50 % and 16.7 ms at 150 %.

**Loop a section.** ``Loop(from_bar, to_bar, repeats)``: bars are 1-based
and counted from tick 0 through the piece's time signatures
(:func:`bar_starts`, from the MIDI ``time_signature`` meta messages,
:func:`rooms.tempo.time_signatures`; a pickup is bar 1). A pass plays the
notes whose onset lies in ``[start of from_bar, start of to_bar + 1)``,
times measured from the start of ``from_bar``; it lasts exactly those bars
at the pass's tempo. Between passes the room counts in ``count_in_beats``
clicks at the next pass's tempo (:meth:`LoopRun.advance`). Each pass has its
own scorers; the session's result is built from the passes
(:func:`combine`).

**Tempo ladder.** ``Ladder(start_pct, step_pct, target_pct, min_accuracy)``:
the first pass is at ``start_pct``; a pass whose players all reach
``min_accuracy`` raises the next pass's tempo by ``step_pct`` (at most to
``target_pct``), a pass that does not is repeated at the same tempo, and a
pass at ``target_pct`` that meets it ends the ladder. ``repeats`` caps the
number of passes (:meth:`Ladder.next_pct`). A ladder without a loop loops
the whole piece.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rooms.errors import RoomError
from rooms.notes import Note
from rooms.piece import Piece
from rooms.scoring import JUDGEMENTS, Scorer, ScoringSettings

MIN_PCT, MAX_PCT = 25.0, 150.0
MAX_PASSES = 100
_WINDOWS = (
    "perfect_ms",
    "great_ms",
    "good_ms",
    "match_window_ms",
    "wrong_pitch_window_ms",
    "onset_tolerance_ms",
)


def check_pct(pct: float, what: str = "tempo_pct") -> float:
    """``pct`` if it is 25–150 (% of the piece's tempo), else ``RoomError("invalid_tempo")``."""
    if not isinstance(pct, int | float) or not MIN_PCT <= pct <= MAX_PCT:
        raise RoomError("invalid_tempo", f"{what} must be {MIN_PCT:g}-{MAX_PCT:g} (%), got {pct!r}")
    return float(pct)


def scaled_scoring(settings: ScoringSettings, pct: float) -> ScoringSettings:
    """``settings`` with every window (ms) × ``100 / pct`` (see the module docstring)."""
    if pct == 100.0:
        return settings
    factor = 100.0 / pct
    return replace(settings, **{name: getattr(settings, name) * factor for name in _WINDOWS})


@dataclass(frozen=True, slots=True)
class Ladder:
    """A tempo ladder, in % of the piece's tempo (see the module docstring).

    Raises ``RoomError("invalid_ladder")`` unless 25 ≤ ``start_pct`` ≤
    ``target_pct`` ≤ 150, 0 < ``step_pct`` ≤ 125 and 0 < ``min_accuracy`` ≤ 1.
    """

    start_pct: float
    step_pct: float
    target_pct: float
    min_accuracy: float

    def __post_init__(self) -> None:
        ok = (
            MIN_PCT <= self.start_pct <= self.target_pct <= MAX_PCT
            and 0 < self.step_pct <= MAX_PCT - MIN_PCT
            and 0 < self.min_accuracy <= 1
        )
        if not ok:
            raise RoomError(
                "invalid_ladder",
                "a ladder needs 25 <= start_pct <= target_pct <= 150, 0 < step_pct <= 125 and "
                f"0 < min_accuracy <= 1; got {self.to_dict()}",
            )

    def next_pct(self, pct: float, accuracy: float) -> float | None:
        """The next pass's tempo after a pass at ``pct`` scored ``accuracy`` (0–1);
        ``None`` when the ladder is climbed (``pct`` is the target and was met)."""
        if accuracy < self.min_accuracy:
            return pct
        if pct >= self.target_pct:
            return None
        return min(pct + self.step_pct, self.target_pct)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Loop:
    """Bars ``from_bar``–``to_bar`` (1-based, inclusive) played ``repeats`` times
    (with a ladder: at most ``repeats`` passes). ``to_bar`` ``None``: the last bar."""

    from_bar: int = 1
    to_bar: int | None = None
    repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"from_bar": self.from_bar, "to_bar": self.to_bar, "repeats": self.repeats}


@dataclass(frozen=True, slots=True)
class Practice:
    """A room's practice settings: ``tempo_pct`` (%), ``loop``, ``ladder``, ``wait``.

    ``tempo_pct`` is the tempo of a room without a ladder; with one, the first
    pass's is ``ladder.start_pct``. ``wait``: wait mode (:mod:`rooms.wait_mode`).
    """

    tempo_pct: float = 100.0
    loop: Loop | None = None
    ladder: Ladder | None = None
    wait: bool = False

    @property
    def looping(self) -> bool:
        return self.loop is not None or self.ladder is not None

    @property
    def first_pct(self) -> float:
        return self.ladder.start_pct if self.ladder is not None else self.tempo_pct

    def to_dict(self) -> dict[str, Any]:
        return {
            "tempo_pct": self.tempo_pct,
            "loop": None if self.loop is None else self.loop.to_dict(),
            "ladder": None if self.ladder is None else self.ladder.to_dict(),
            "wait": self.wait,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Practice:
        if not d:
            return cls()
        loop, ladder = d.get("loop"), d.get("ladder")
        return cls(
            tempo_pct=d.get("tempo_pct", 100.0),
            loop=Loop(**loop) if loop else None,
            ladder=Ladder(**ladder) if ladder else None,
            wait=d.get("wait", False),
        )


def make_practice(
    piece: Piece | None,
    *,
    tempo_pct: float = 100.0,
    loop: Loop | None = None,
    ladder: Ladder | None = None,
    wait: bool = False,
    base_bpm: float,
    min_bpm: float,
    max_bpm: float,
) -> Practice:
    """Checked practice settings for a room on ``piece`` at ``base_bpm`` (BPM at 100 %).

    Raises ``RoomError``: ``invalid_tempo`` (a percent outside 25–150, or a
    tempo outside ``min_bpm``–``max_bpm``), ``practice_in_free_jam`` (a loop,
    ladder or wait mode without a piece), ``practice_conflict`` (wait mode with a
    loop or ladder), ``invalid_bars`` (bars outside the piece, or ``from_bar``
    after ``to_bar``), ``invalid_repeats`` (1–100).
    """
    check_pct(tempo_pct)
    practice = Practice(tempo_pct, loop, ladder, wait)
    if (practice.looping or wait) and piece is None:
        raise RoomError("practice_in_free_jam", "a free jam has no score to loop or wait at")
    if practice.looping and wait:
        raise RoomError("practice_conflict", "wait mode cannot be combined with a loop or ladder")
    if practice.looping:
        assert piece is not None
        section(piece, loop or Loop())
        repeats = (loop or Loop(repeats=MAX_PASSES if ladder else 1)).repeats
        if not 1 <= repeats <= MAX_PASSES:
            raise RoomError("invalid_repeats", f"repeats must be 1-{MAX_PASSES}, got {repeats}")
    lowest = min(practice.first_pct, ladder.target_pct if ladder else practice.first_pct)
    highest = max(practice.first_pct, ladder.target_pct if ladder else practice.first_pct)
    for pct in (lowest, highest):
        bpm = base_bpm * pct / 100.0
        if not min_bpm <= bpm <= max_bpm:
            raise RoomError(
                "invalid_tempo",
                f"{pct:g} % of {base_bpm:g} BPM is {bpm:g} BPM; rooms play "
                f"{min_bpm:g}-{max_bpm:g} BPM",
            )
    return practice


# ------------------------------------------------------------------ bars


def bar_starts(piece: Piece) -> list[int]:
    """Tick of the start of each bar (index 0 = bar 1) up to the end of the piece's last
    note, plus the tick where the bar after the last one starts.

    A bar lasts ``numerator × 4 / denominator`` quarter notes of the time
    signature in force at its start (at least a 64th note); a time signature
    set in mid-bar starts a new bar there (as a MIDI file puts it at a barline).
    """
    tpb = piece.ticks_per_beat
    end = max(
        (max(n.onset_tick + 1, round(n.offset_beat * tpb)) for p in piece.parts for n in p.notes),
        default=1,
    )
    signatures = list(piece.time_signatures)
    starts = [0]
    k = 0
    while starts[-1] < end:
        tick = starts[-1]
        while k + 1 < len(signatures) and signatures[k + 1].tick <= tick:
            k += 1
        sig = signatures[k]
        # At least a 64th note: a hostile 1/2**200 signature must not make millions of bars.
        length = max(1, tpb // 16, round(sig.numerator * 4 * tpb / sig.denominator))
        nxt = tick + length
        if k + 1 < len(signatures) and tick < signatures[k + 1].tick < nxt:
            nxt = signatures[k + 1].tick
        starts.append(nxt)
    return starts


@dataclass(frozen=True, slots=True)
class Section:
    """Bars ``from_bar``–``to_bar`` of a piece: ticks ``[start_tick, end_tick)``, and
    seconds ``start_s``/``end_s`` through the file's tempo map."""

    from_bar: int
    to_bar: int
    start_tick: int
    end_tick: int
    start_s: float
    end_s: float
    start_beat: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def notes(self, notes: Iterable[Note]) -> tuple[Note, ...]:
        """The notes with an onset in the section, times from its start (offsets clipped)."""
        s0, s1 = self.start_s, self.end_s
        b0 = self.start_beat
        out = []
        for n in notes:
            if self.start_tick <= n.onset_tick < self.end_tick:
                off = min(n.offset_s, s1) - s0
                out.append(
                    replace(
                        n,
                        onset_s=n.onset_s - s0,
                        offset_s=max(off, n.onset_s - s0),
                        onset_beat=n.onset_beat - b0,
                        offset_beat=n.offset_beat - b0,
                    )
                )
        return tuple(out)


def section(piece: Piece, loop: Loop) -> Section:
    """The bars of ``loop`` in ``piece``; ``RoomError("invalid_bars")`` outside it."""
    starts = bar_starts(piece)
    bars = len(starts) - 1
    to_bar = bars if loop.to_bar is None else loop.to_bar
    if not 1 <= loop.from_bar <= to_bar <= bars:
        raise RoomError(
            "invalid_bars",
            f"bars {loop.from_bar}-{to_bar} are not in {piece.title!r}, which has bars 1-{bars}",
        )
    a, b = starts[loop.from_bar - 1], starts[to_bar]
    tm = piece.tempo_map
    return Section(
        loop.from_bar,
        to_bar,
        a,
        b,
        tm.tick_to_seconds(a),
        tm.tick_to_seconds(b),
        a / piece.ticks_per_beat,
    )


# ------------------------------------------------------------------ passes


@dataclass(slots=True)
class Pass:
    """One pass of a loop: ``index`` (1-based), ``start_at_ms`` (epoch ms of its first
    beat), ``end_at_ms`` (end of its last bar), tempo (``tempo_pct`` %, ``tempo_bpm``),
    ``count_in_from_ms`` (epoch ms its count-in began: the previous pass's end), its
    ``scorers`` and, once over, each player's final ``results`` (``{user_id: result}``)."""

    index: int
    start_at_ms: float
    end_at_ms: float
    tempo_pct: float
    tempo_bpm: float
    count_in_from_ms: float
    scorers: dict[str, Scorer] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass": self.index,
            "start_at": round(self.start_at_ms),
            "end_at": round(self.end_at_ms),
            "tempo_pct": self.tempo_pct,
            "tempo_bpm": round(self.tempo_bpm, 3),
        }


class LoopRun:
    """The passes of a started looping room (see the module docstring).

    ``parts``: ``{user_id: part name}`` of the scored players; ``base_bpm``
    the tempo at 100 %; ``scoring`` the windows at 100 % (scaled per pass).
    Times are epoch ms on the server clock.
    """

    def __init__(
        self,
        piece: Piece,
        practice: Practice,
        *,
        base_bpm: float,
        count_in_beats: int,
        scoring: ScoringSettings,
        start_at_ms: float,
        parts: Mapping[str, str],
    ) -> None:
        self.piece = piece
        self.practice = practice
        self.loop = practice.loop or Loop(repeats=MAX_PASSES if practice.ladder else 1)
        self.section = section(piece, self.loop)
        self.base_bpm = base_bpm
        self.count_in_beats = count_in_beats
        self.scoring = scoring
        self._notes = {
            user: self.section.notes(piece.part(part).notes) for user, part in parts.items()
        }
        self.passes: list[Pass] = [self._pass(1, practice.first_pct, start_at_ms, start_at_ms)]
        self.done = False

    def _pass(self, index: int, pct: float, start_at_ms: float, count_from: float) -> Pass:
        bpm = self.base_bpm * pct / 100.0
        scale = self.piece.bpm / bpm
        p = Pass(
            index,
            start_at_ms,
            start_at_ms + self.section.duration_s * scale * 1000.0,
            pct,
            bpm,
            count_from,
        )
        settings = scaled_scoring(self.scoring, pct)
        for user, notes in self._notes.items():
            p.scorers[user] = Scorer(notes, time_scale=scale, tempo_bpm=bpm, settings=settings)
        return p

    @property
    def current(self) -> Pass:
        return self.passes[-1]

    def due_ms(self) -> float:
        """When the current pass ends (epoch ms): then call :meth:`advance`."""
        return self.current.end_at_ms

    def end_ms(self) -> float:
        """End of the last pass (epoch ms) when done, else of the current one."""
        return self.current.end_at_ms

    def clicks(self, p: Pass) -> list[float]:
        """Epoch ms of the count-in clicks before pass ``p``."""
        beat = 60000.0 / p.tempo_bpm
        return [round(p.start_at_ms - k * beat, 1) for k in range(self.count_in_beats, 0, -1)]

    def accuracy(self, p: Pass, users: Sequence[str]) -> float:
        """The lowest final accuracy (0–1) of ``users`` in pass ``p`` (1.0 with none)."""
        values = [p.scorers[u].result(final=True)["accuracy"] for u in users if u in p.scorers]
        return min(values) if values else 1.0

    def advance(self, now_ms: float, users: Sequence[str]) -> Pass | None:
        """The current pass is over at ``now_ms``: freeze its results and plan the next
        (count-in from ``now_ms``), judged on ``users`` (the present human players).
        Returns the new pass, or ``None`` when the loop is done."""
        p = self.current
        if self.done:
            return None
        p.results = {u: s.result(final=True) for u, s in p.scorers.items()}
        accuracy = self.accuracy(p, users)
        if self.practice.ladder is not None:
            pct = self.practice.ladder.next_pct(p.tempo_pct, accuracy)
        else:
            pct = p.tempo_pct
        if pct is None or p.index >= self.loop.repeats:
            self.done = True
            return None
        beat = 60000.0 / (self.base_bpm * pct / 100.0)
        start = round(now_ms + self.count_in_beats * beat)  # whole ms, as the room's start_at
        nxt = self._pass(p.index + 1, pct, start, now_ms)
        self.passes.append(nxt)
        return nxt

    def pass_for(self, t_ms: float) -> Pass:
        """The pass a note stamped ``t_ms`` belongs to: the latest one whose count-in has
        reached its middle (an early first note of a pass is still that pass's)."""
        for p in reversed(self.passes):
            if t_ms >= (p.count_in_from_ms + p.start_at_ms) / 2 or p.index == 1:
                return p
        return self.passes[0]

    def note(self, user_id: str, kind: str, pitch: int, t_ms: float) -> None:
        """Score one event of ``user_id`` in its pass (a pass already over ignores it)."""
        p = self.pass_for(t_ms)
        scorer = p.scorers.get(user_id)
        if scorer is None or p.results is not None:
            return
        if kind == "on":
            scorer.note_on(pitch, t_ms - p.start_at_ms)
        else:
            scorer.note_off(pitch, t_ms - p.start_at_ms)

    def result(self, user_id: str, *, final: bool, complete: bool) -> dict[str, Any]:
        """``user_id``'s result: :func:`combine` over the passes (the current one live)."""
        entries = []
        for p in self.passes:
            scorer = p.scorers.get(user_id)
            if scorer is None:
                continue
            if p.results is not None and user_id in p.results:
                r = p.results[user_id]
            else:
                r = scorer.result(final=final, complete=complete)
            r = {**r, "tempo_pct": p.tempo_pct}
            if not final:  # live updates stay small: per-note detail only in the final result
                r.pop("notes", None)
            entries.append({**p.to_dict(), "accuracy": r["accuracy"], "result": r})
        return combine(entries, complete=complete, practice=self.practice, section=self.section)

    def onsets_by_tick(self, user_id: str) -> dict[int, list[float]]:
        """Matched onsets of every pass, keyed so that passes never share a key:
        ``(pass - 1) * 2**40 + tick`` (for :func:`rooms.scoring.asynchrony`)."""
        out: dict[int, list[float]] = {}
        for p in self.passes:
            scorer = p.scorers.get(user_id)
            if scorer is not None:
                for tick, ts in scorer.matched_onsets_by_tick().items():
                    out[(p.index - 1) * 2**40 + tick] = [t + p.start_at_ms for t in ts]
        return out

    def schedule(self) -> list[dict[str, Any]]:
        """The passes so far (``Pass.to_dict``)."""
        return [p.to_dict() for p in self.passes]

    def restore(self, schedule: Sequence[Mapping[str, Any]], done: bool) -> None:
        """Take another process's pass schedule (a replica: scorers for new passes)."""
        for entry in schedule[len(self.passes) :]:
            count_from = self.current.end_at_ms
            self.passes.append(
                self._pass(entry["pass"], entry["tempo_pct"], entry["start_at"], count_from)
            )
        self.done = done


_SUMS = ("notes_expected", "notes_played", "notes_matched", "wrong_pitch", "extra", "missed")


def combine(
    passes: Sequence[Mapping[str, Any]],
    *,
    complete: bool,
    practice: Practice,
    section: Section,
) -> dict[str, Any]:
    """A looping player's result from their passes' results.

    ``passes``: ``{"pass", "start_at", "end_at", "tempo_pct", "tempo_bpm", "accuracy",
    "result"}`` each, ``result`` a :meth:`rooms.scoring.Scorer.result`. Counts
    (``notes_expected``… ``missed``, ``judgements``) are summed; ``accuracy`` is
    matched / expected over all passes; ``onset_mean_ms`` the matched-weighted
    mean; ``precision``/``recall``/``f1`` the expected-weighted means;
    ``tempo_bpm``/``tempo_bpm_played`` those of the last pass. Adds
    ``"passes"``, ``"loop"`` (``from_bar``, ``to_bar``), ``"ladder"`` and
    ``"tempo_pct"`` (the last pass's).
    """
    results = [p["result"] for p in passes]
    out: dict[str, Any] = {k: sum(r[k] for r in results) for k in _SUMS}
    expected = out["notes_expected"]
    matched = out["notes_matched"]
    out["accuracy"] = round(matched / expected, 6) if expected else 0.0
    for key in ("precision", "recall", "f1"):
        weighted = sum(r[key] * r["notes_expected"] for r in results)
        out[key] = round(weighted / expected, 6) if expected else 0.0
    means = [(r["onset_mean_ms"], r["notes_matched"]) for r in results if r["onset_mean_ms"]]
    total = sum(n for _, n in means)
    out["onset_mean_ms"] = round(sum(m * n for m, n in means) / total, 3) if total else None
    out["judgements"] = {j: sum(r["judgements"][j] for r in results) for j in JUDGEMENTS}
    last = results[-1] if results else {}
    out["tempo_bpm"] = last.get("tempo_bpm")
    out["tempo_bpm_played"] = last.get("tempo_bpm_played")
    out["tempo_pct"] = passes[-1]["tempo_pct"] if passes else practice.first_pct
    out["complete"] = complete
    out["loop"] = {"from_bar": section.from_bar, "to_bar": section.to_bar}
    out["ladder"] = None if practice.ladder is None else practice.ladder.to_dict()
    out["passes"] = [dict(p) for p in passes]
    return out
