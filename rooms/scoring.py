"""Online scoring of one player's notes against the player's reference part.

A :class:`Scorer` is fed note-on/off events while the piece is played and can
report a live result at any time. Times given to it are milliseconds relative
to the room's ``start_at`` (beat 1 of the piece) on the server clock.

Matching (ours; the README's "How it is scored"): every played note-on is compared
with the expected notes near the time a causal tempo tracker predicts for
them. The tracker fits ``played = a + b * expected`` by least squares over the
last ``tempo_window`` matched onsets (a local linear time warp; the notes of a
chord count as one onset at their mean played time), so a player who drifts
or slows down for a passage keeps being matched; before the first match it
predicts the room's grid.

One spurious note must not move the fit (an octave error of an audio
transcription, or a slip, matched early to the next note of its pitch would
otherwise read as a sudden tempo change and take the tracker away from the
player). Once two onsets are fitted (before, the ratio is only a prior), a
match enters the fit only through a validation gate: its residual from the
prediction may be at most ``outlier_ms`` plus ``outlier_ratio`` × ``b`` × the
score time since the latest fitted onset (ms; 0.5 = a 50 % tempo jump over
that interval). A match outside the gate stays matched but is held out of the
fit (and from ``on_match``); the next match outside the gate confirms it when
the two are shifted alike from the fit (a jump: the fit restarts from them,
keeping the ratio) or imply a ratio within the bounds (a tempo change); the
next match inside the gate leaves it out for good. While a match is held, a
note with no good candidate under the fit is looked for where the held match
puts the player. This is measurement gating with 2-of-2 track confirmation
from target tracking (Y. Bar-Shalom and T. E. Fortmann, *Tracking and Data
Association*, Academic Press 1988). A later note of the same pitch more than
``outlier_ms`` nearer an expected note's predicted time than the note that
matched it takes that expected note back; the displaced note is scored again
at its own time (another match, a wrong pitch or extra), so an early spurious
note never consumes a reference note the player then plays on time
(:attr:`Scorer.taken_back` counts those that end unmatched). Last, a player
who pauses (holds a note longer than written: a fermata the file does not
mark) and then plays a note of the next onset, later than its window and
which would otherwise be no match or an early match of a later note of its
pitch, is matched at that onset and the fit restarts from it.

Each played note-on ends as exactly one of

* ``matched``: an unmatched expected note of the same pitch within
  ``match_window_ms`` of its predicted time, widened by ``tempo_slack`` ms per
  ms of score time since the last match (the nearest one; every chord note
  is matched on its own);
* ``wrong_pitch``: no such note, but an unmatched expected note of another
  pitch within ``wrong_pitch_window_ms`` of its predicted time (a later
  correct note for that expected note takes the slot back; the wrong one
  moves to another such expected note, e.g. another note of the chord, or
  becomes extra when there is none);
* ``extra``: neither.

(A note's outcome can change later, by the two take-back rules; ``note_on``
returns its outcome at the time.) Each expected note ends ``matched`` at most
once, or ``missed``. So
``notes_expected = notes_matched + missed`` and
``notes_played = notes_matched + wrong_pitch + extra``.

Timing: the signed onset deviation is measured from the room's grid
(``played - expected``, ms, negative = early) and judged against the
judgement windows. ``precision``/``recall``/``f1`` are independent of the
matching above: they are mir_eval's onset-only note metrics on the grid (see
:mod:`rooms.transcription`).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rooms.notes import Note
from rooms.scoring_settings import JUDGEMENTS, ScoringSettings
from rooms.tempo_tracker import TempoGate, TempoTracker
from rooms.transcription import OnlineNoteMatcher

MAX_MARKS = 256  # marks kept between two take_marks(): bounds a score:update's "marks"

_PENDING, _MATCHED = 0, 1

# Importable from here too: the scorer's settings and its tempo tracker.
__all__ = ["JUDGEMENTS", "MAX_MARKS", "Scorer", "ScoringSettings", "TempoTracker", "asynchrony"]


class Scorer(TempoGate):
    """Live scoring of one player against one part at the room tempo.

    ``notes``: the part's reference notes (:class:`rooms.notes.Note`, at the
    file's tempo). ``time_scale``: room seconds per file second, i.e.
    ``piece_bpm / room_bpm`` (the room tempo replaces the file tempo and
    scales its tempo map proportionally). ``tempo_bpm``: the room tempo,
    quarter notes per minute, used for ``tempo_bpm_played``.

    Feed :meth:`note_on` / :meth:`note_off` with times in ms relative to the
    room's ``start_at``, in arrival order; read :meth:`result`.
    ``on_match(expected_ms, played_ms)``, when set, is called at every match
    (how a computer partner listens, :mod:`rooms.following`; a match held out
    of the tempo fit is told once confirmed, or never). ``taken_back``: how
    many ``"matched"`` note-ons were later displaced by a nearer note of their
    pitch and ended wrong pitch or extra.
    """

    def __init__(
        self,
        notes: Sequence[Note],
        *,
        time_scale: float = 1.0,
        tempo_bpm: float = 120.0,
        settings: ScoringSettings | None = None,
    ) -> None:
        if time_scale <= 0 or not math.isfinite(time_scale):
            raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
        if tempo_bpm <= 0:
            raise ValueError(f"tempo_bpm must be positive, got {tempo_bpm!r}")
        self.settings = settings or ScoringSettings()
        self.tempo_bpm = tempo_bpm
        ordered = sorted(notes, key=lambda n: (n.onset_tick, n.pitch))
        self.notes: tuple[Note, ...] = tuple(ordered)
        scale_ms = time_scale * 1000.0
        self.expected_ms: list[float] = [n.onset_s * scale_ms for n in ordered]
        self.expected_offset_ms: list[float] = [n.offset_s * scale_ms for n in ordered]
        self.pitches: list[int] = [n.pitch for n in ordered]
        n = len(ordered)
        # Per pitch: expected indices in time order, and their times for bisect.
        self._pitch_index: dict[int, list[int]] = {}
        for i, p in enumerate(self.pitches):
            self._pitch_index.setdefault(p, []).append(i)
        self._pitch_times = {
            p: [self.expected_ms[i] for i in idx] for p, idx in self._pitch_index.items()
        }
        self._status = [_PENDING] * n
        self.played_ms: list[float | None] = [None] * n  # matched note-on time per expected note
        # expected index -> (pitch, t) of a wrong note played in its place
        self._wrong: dict[int, tuple[int, float]] = {}
        self._tracker = TempoTracker(
            self.settings.tempo_window, self.settings.min_tempo_ratio, self.settings.max_tempo_ratio
        )
        self._transcription = OnlineNoteMatcher(
            [(t / 1000.0, p) for t, p in zip(self.expected_ms, self.pitches, strict=True)],
            self.settings.onset_tolerance_ms / 1000.0,
        )
        self._miss_cursor = 0  # expected notes before this index are past their window
        self._missed_live = 0
        self.notes_played = 0
        self.notes_matched = 0
        self.wrong_pitch = 0
        self.extra = 0
        self.note_offs = 0
        # "matched" note-ons later taken back by a nearer note and rescored as wrong/extra
        self.taken_back = 0
        self._deviations: list[float] = []
        self._judgements = dict.fromkeys(JUDGEMENTS, 0)
        # Welford accumulators: deviation mean/variance and the global tempo fit.
        self._dev_mean = self._dev_m2 = 0.0
        self._fit_n = 0
        self._fit_mx = self._fit_my = self._fit_sxx = self._fit_sxy = 0.0
        self.last_event_ms: float | None = None
        self._last_matched_ms = 0.0  # expected time of the latest fitted match (0 = start_at)
        self._fitted = bytearray(n)  # 1 where the match is in the tempo fit
        self._fit_log: deque[int] = deque(maxlen=64)  # recently fitted, for _restart
        self._next_from = 0  # first expected note after the latest fitted onset
        self._last_on_ms: float | None = None  # the previous note-on
        self._held: list[int] = []  # matches outside the gate, waiting for confirmation
        # (expected index, judgement | "wrong_pitch") since the last take_marks(): what a
        # score:update tells the page to colour in the score (the oldest dropped past the cap).
        self._marks: deque[tuple[int, str]] = deque(maxlen=MAX_MARKS)
        # Told (expected ms, played ms) of every match: a computer partner listens here.
        self.on_match: Callable[[float, float], None] | None = None

    # -- feeding -----------------------------------------------------------------

    def note_on(self, pitch: int, t_ms: float) -> str:
        """Score one note-on (MIDI pitch, ms from start_at).

        Returns what it became: ``"matched"``, ``"wrong_pitch"`` or ``"extra"``.
        """
        self.notes_played += 1
        self.last_event_ms = t_ms
        self._transcription.add(t_ms / 1000.0, pitch)
        self._expire(t_ms)
        previous, self._last_on_ms = self._last_on_ms, t_ms
        i = self._nearest_same_pitch(pitch, t_ms, take_back=True)
        if self._held and (
            i is None
            or abs(t_ms - self._tracker.predict(self.expected_ms[i]))
            > self.settings.match_window_ms
        ):
            j = self._as_held_predicts(pitch, t_ms)
            if j is not None:
                i = j
        # Only when the note would be no match or an early match of a later note.
        if previous is not None and (
            i is None
            or t_ms - self._tracker.predict(self.expected_ms[i]) < -self.settings.match_window_ms
        ):
            j = self._after_pause(pitch, t_ms, previous)
            if j is not None:
                self._match(j, t_ms, restart=True)
                return "matched"
        if i is not None:
            displaced = self.played_ms[i]
            if displaced is not None:  # nearer the prediction than the note that had it
                self._unmatch(i)
                self._match(i, t_ms)
                self.taken_back += self._rescore(pitch, displaced) != "matched"
            else:
                self._match(i, t_ms)
            return "matched"
        return self._rescore(pitch, t_ms, matching=False)

    def _rescore(self, pitch: int, t_ms: float, *, matching: bool = True) -> str:
        """Score a note-on without taking any expected note back (a displaced note)."""
        if matching:
            i = self._nearest_same_pitch(pitch, t_ms, take_back=False)
            if i is not None:
                self._match(i, t_ms)
                return "matched"
        i = self._nearest_any_pitch(t_ms)
        if i is not None:
            self._wrong[i] = (pitch, t_ms)
            self._marks.append((i, "wrong_pitch"))
            self.wrong_pitch += 1
            return "wrong_pitch"
        self.extra += 1
        return "extra"

    def note_off(self, pitch: int, t_ms: float) -> None:
        """Record a note-off (onsets only are scored; kept for completeness)."""
        self.note_offs += 1
        self.last_event_ms = t_ms if self.last_event_ms is None else max(self.last_event_ms, t_ms)

    def _tolerance(self, expected_ms: float) -> float:
        """How far (ms) from its predicted time a right-pitch note may be matched.

        ``match_window_ms``, widened by ``tempo_slack`` ms per ms of score time
        since the last matched note: the further the tracker extrapolates, the
        less it knows (a tempo change during a long note shifts the next onset).
        """
        gap = expected_ms - self._last_matched_ms
        window = self.settings.match_window_ms
        return window + self.settings.tempo_slack * gap if gap > 0 else window

    def _as_held_predicts(self, pitch: int, t_ms: float) -> int | None:
        """The unmatched note of ``pitch`` nearest where the latest held match puts the
        player (its played time, at the fitted ratio), within ``match_window_ms``.

        A player who jumped is held out of the fit until a second note confirms
        the jump; that note is looked for where the jump put the player.
        """
        h = self._held[-1]
        played = self.played_ms[h]
        times = self._pitch_times.get(pitch)
        if played is None or times is None:
            return None
        b = self._tracker.b
        x = self.expected_ms[h] + (t_ms - played) / b
        reach = self.settings.match_window_ms / b
        lo = bisect.bisect_left(times, x - reach)
        hi = bisect.bisect_right(times, x + reach, lo)
        indices = self._pitch_index[pitch]
        best, best_d = None, math.inf
        for k in range(lo, hi):
            i = indices[k]
            if self._status[i] == _PENDING and abs(times[k] - x) < best_d:
                best, best_d = i, abs(times[k] - x)
        return best

    def _after_pause(self, pitch: int, t_ms: float, previous_ms: float) -> int | None:
        """After a pause, an unmatched note of ``pitch`` at the next onset to play.

        The player held a note or paused (a fermata the file does not mark):
        nothing was played from before the next onset was due (``previous_ms``,
        the previous note-on) until ``t_ms``, more than ``match_window_ms`` and at
        most ``hold_ms`` past its predicted time. Read as an early match of a
        later note of its pitch, the pause would take the tracker away from the
        player; the match restarts the fit instead (a pause moves the position,
        not the tempo).
        """
        times = self.expected_ms
        status = self._status
        n = len(times)
        k = self._next_from
        stop = min(n, k + 16)  # a short scan: held matches may lie ahead
        while k < stop and status[k] != _PENDING:
            k += 1
        if k >= stop:
            return None
        due = self._tracker.predict(times[k])
        late = t_ms - due
        if previous_ms > due or not self.settings.match_window_ms < late <= self.settings.hold_ms:
            return None
        onset = times[k] + 0.5
        pitches = self.pitches
        while k < n and times[k] < onset:
            if pitches[k] == pitch and status[k] == _PENDING:
                return k
            k += 1
        return None

    def _nearest_same_pitch(self, pitch: int, t_ms: float, *, take_back: bool) -> int | None:
        """The expected note of ``pitch`` nearest its prediction within its tolerance.

        An unmatched one, or with ``take_back`` a matched one whose note-on was
        more than ``outlier_ms`` further from the prediction than ``t_ms``.
        """
        times = self._pitch_times.get(pitch)
        if times is None:
            return None
        tracker = self._tracker
        window = self.settings.match_window_ms
        slack = self.settings.tempo_slack
        last = self._last_matched_ms
        # Expected times x with |t - (a + b x)| <= window + slack * max(0, x - last) lie in
        # [lo_x, hi_x]; b >= min_tempo_ratio > slack keeps the interval bounded.
        hi_x = (t_ms - tracker.a + window - slack * last) / (tracker.b - slack)
        hi_x = max(hi_x, (t_ms - tracker.a + window) / tracker.b)
        lo_x = (t_ms - tracker.a - window) / tracker.b
        lo_x = min(lo_x, (t_ms - tracker.a - window + slack * last) / (tracker.b + slack))
        lo = bisect.bisect_left(times, lo_x)
        hi = bisect.bisect_right(times, hi_x, lo)
        best, best_d = None, math.inf
        indices = self._pitch_index[pitch]
        status = self._status
        margin = self.settings.outlier_ms
        for k in range(lo, hi):
            i = indices[k]
            x = times[k]
            d = abs(t_ms - tracker.predict(x))
            if d >= best_d or d > self._tolerance(x):
                continue
            if status[i] == _PENDING:
                best, best_d = i, d
            elif take_back:
                held = self.played_ms[i]
                if held is not None and abs(held - tracker.predict(x)) > d + margin:
                    best, best_d = i, d
        return best

    def _nearest_any_pitch(self, t_ms: float) -> int | None:
        window = self.settings.wrong_pitch_window_ms
        if window <= 0:
            return None
        tracker = self._tracker
        times = self.expected_ms
        centre = tracker.to_expected(t_ms)
        reach = window / tracker.b
        lo = bisect.bisect_left(times, centre - reach)
        hi = bisect.bisect_right(times, centre + reach, lo)
        best, best_d = None, window
        for i in range(lo, hi):
            if self._status[i] == _PENDING and i not in self._wrong:
                d = abs(t_ms - tracker.predict(times[i]))
                if d <= best_d:
                    best, best_d = i, d
        return best

    def _match(self, i: int, t_ms: float, *, restart: bool = False) -> None:
        self._status[i] = _MATCHED
        if i < self._miss_cursor:  # counted live as missed when its window had passed
            self._missed_live -= 1
        stolen = self._wrong.pop(i, None)
        if stolen is not None:
            # The right pitch arrived after a wrong one had taken this note's slot. The
            # wrong note moves to another unmatched note near it (in a chord, the one it
            # was really played for); with none left it is extra.
            j = self._nearest_any_pitch(stolen[1])
            if j is not None:
                self._wrong[j] = stolen
                self._marks.append((j, "wrong_pitch"))
            else:
                self.wrong_pitch -= 1
                self.extra += 1
        self.played_ms[i] = t_ms
        self.notes_matched += 1
        expected = self.expected_ms[i]
        deviation = t_ms - expected
        self._deviations.append(deviation)
        judgement = self.settings.judge(deviation)
        self._judgements[judgement] += 1
        self._marks.append((i, judgement))
        delta = deviation - self._dev_mean
        self._dev_mean += delta / self.notes_matched
        self._dev_m2 += delta * (deviation - self._dev_mean)
        self._fit_n += 1
        dx = expected - self._fit_mx
        self._fit_mx += dx / self._fit_n
        self._fit_my += (t_ms - self._fit_my) / self._fit_n
        self._fit_sxx += dx * (expected - self._fit_mx)
        self._fit_sxy += dx * (t_ms - self._fit_my)
        self._gate(i, expected, t_ms, restart)

    def _unmatch(self, i: int) -> None:
        """Undo :meth:`_match` of expected note ``i`` (a later note takes it back)."""
        t_ms = self.played_ms[i]
        assert t_ms is not None
        expected = self.expected_ms[i]
        self._status[i] = _PENDING
        self.played_ms[i] = None
        if i < self._miss_cursor:  # past its window: missed again until re-matched
            self._missed_live += 1
        deviation = t_ms - expected
        self._deviations.remove(deviation)
        self._judgements[self.settings.judge(deviation)] -= 1
        # Welford's updates run backwards (exact up to rounding).
        n = self.notes_matched
        self.notes_matched = n - 1
        if n > 1:
            mean = (n * self._dev_mean - deviation) / (n - 1)
            self._dev_m2 = max(
                0.0, self._dev_m2 - (deviation - mean) * (deviation - self._dev_mean)
            )
            self._dev_mean = mean
            mx = (n * self._fit_mx - expected) / (n - 1)
            my = (n * self._fit_my - t_ms) / (n - 1)
            self._fit_sxx -= (expected - mx) * (expected - self._fit_mx)
            self._fit_sxy -= (expected - mx) * (t_ms - self._fit_my)
            self._fit_mx, self._fit_my = mx, my
        else:
            self._dev_mean = self._dev_m2 = 0.0
            self._fit_mx = self._fit_my = self._fit_sxx = self._fit_sxy = 0.0
        self._fit_n = n - 1
        if self._fitted[i]:
            self._tracker.forget(expected, t_ms)
            self._fitted[i] = 0
        if i in self._held:
            self._held.remove(i)

    def _expire(self, now_ms: float) -> None:
        """Count expected notes whose match window has passed unmatched as missed (live)."""
        times = self.expected_ms
        status = self._status
        tracker = self._tracker
        k = self._miss_cursor
        n = len(times)
        while k < n and tracker.predict(times[k]) + self._tolerance(times[k]) < now_ms:
            if status[k] == _PENDING:
                self._missed_live += 1
                if k not in self._wrong:  # a wrong pitch's slot keeps its own mark
                    self._marks.append((k, "miss"))
            k += 1
        self._miss_cursor = k

    def advance(self, now_ms: float) -> None:
        """Let time pass without a note (ms from start_at): updates the live ``missed``."""
        self._expire(now_ms)

    # -- reading -----------------------------------------------------------------

    def take_marks(self) -> list[list[int | str]]:
        """What changed per expected note since the last call, and forget it.

        ``[[index, mark], …]`` in the order it happened: ``index`` into the part's
        notes in score order (the final result's ``notes`` list), ``mark`` a
        judgement (``perfect``, ``great``, ``good``, ``poor``; ``miss`` when its
        window passed unmatched) or ``wrong_pitch`` (a wrong note took its
        slot). A note can be marked again (a late match after ``miss``). At most
        :data:`MAX_MARKS` are kept between calls, the newest.
        """
        marks = [[i, mark] for i, mark in self._marks]
        self._marks.clear()
        return marks

    @property
    def missed(self) -> int:
        """Expected notes not matched and already past their window (live)."""
        # The tempo tracker can move a note's window after it was counted here (or a
        # note-on can arrive stamped earlier than the last); ``_match`` then uncounts it.
        return self._missed_live

    def predicted_end_ms(self) -> float:
        """Predicted time (ms from start_at) of the end of the part's last note."""
        if not self.expected_offset_ms:
            return 0.0
        return self._tracker.predict(max(self.expected_offset_ms))

    def matched_onsets_by_tick(self) -> dict[int, list[float]]:
        """Played onset times (ms from start_at) of matched notes, by the score tick."""
        out: dict[int, list[float]] = {}
        for note, t in zip(self.notes, self.played_ms, strict=True):
            if t is not None:
                out.setdefault(note.onset_tick, []).append(t)
        return out

    def tempo_bpm_played(self) -> float | None:
        """Overall played tempo (BPM) from a least-squares fit over all matches, or ``None``."""
        if self._fit_n < 2 or self._fit_sxx <= 1.0:
            return None
        ratio = self._fit_sxy / self._fit_sxx
        if ratio <= 0:
            return None
        return self.tempo_bpm / ratio

    def result(self, *, final: bool = False, complete: bool = True) -> dict[str, Any]:
        """The player's result as a JSON-ready dict.

        Live (``final=False``): ``missed`` counts expected notes whose window
        has passed. Final: every unmatched expected note is missed and a
        per-note list ``notes`` is added (one entry per expected note:
        ``onset_beat``, ``pitch``, ``expected_ms``, ``played_ms``,
        ``deviation_ms``, ``judgement`` and, for a wrong pitch, ``played_pitch``).
        Times in ms from ``start_at``; ``accuracy``, ``precision``, ``recall``,
        ``f1`` are 0–1; ``tempo_bpm_played`` is BPM or ``None``.
        """
        expected = len(self.notes)
        missed = expected - self.notes_matched if final else self._missed_live
        precision, recall, f1 = self._transcription.scores()
        devs = self._deviations
        judgements = dict(self._judgements)
        judgements["miss"] = missed
        tempo_played = self.tempo_bpm_played()
        out: dict[str, Any] = {
            "notes_expected": expected,
            "notes_played": self.notes_played,
            "notes_matched": self.notes_matched,
            "wrong_pitch": self.wrong_pitch,
            "extra": self.extra,
            "missed": missed,
            "accuracy": _round(self.notes_matched / expected if expected else 0.0, 6),
            "precision": _round(precision, 6),
            "recall": _round(recall, 6),
            "f1": _round(f1, 6),
            "onset_mean_ms": _round(self._dev_mean, 3) if devs else None,
            "onset_median_ms": _round(statistics.median(devs), 3) if devs else None,
            "onset_std_ms": _round(math.sqrt(self._dev_m2 / len(devs)), 3) if devs else None,
            "judgements": judgements,
            "tempo_bpm": self.tempo_bpm,
            "tempo_bpm_played": _round(tempo_played, 3) if tempo_played is not None else None,
            "complete": complete,
        }
        if final:
            out["notes"] = self._note_details()
        return out

    def _note_details(self) -> list[dict[str, Any]]:
        details = []
        for i, note in enumerate(self.notes):
            played = self.played_ms[i]
            entry: dict[str, Any] = {
                "onset_beat": _round(note.onset_beat, 6),
                "pitch": note.pitch,
                "expected_ms": _round(self.expected_ms[i], 3),
                "played_ms": _round(played, 3) if played is not None else None,
                "deviation_ms": None,
                "judgement": "miss",
            }
            if played is not None:
                deviation = played - self.expected_ms[i]
                entry["deviation_ms"] = _round(deviation, 3)
                entry["judgement"] = self.settings.judge(deviation)
            elif i in self._wrong:
                entry["played_pitch"] = self._wrong[i][0]
            details.append(entry)
        return details


def _round(x: float, digits: int) -> float:
    return round(float(x), digits)


def asynchrony(onsets: Mapping[str, Mapping[int, Sequence[float]]]) -> dict[str, Any]:
    """Ensemble synchrony: mean absolute onset difference between partners, ms.

    ``onsets`` maps each player to ``{score_tick: [played onset ms, ...]}``
    (see :meth:`Scorer.matched_onsets_by_tick`). For every pair of players and
    every tick both played, the players' mean onsets at that tick are compared.
    Returns ``{"asynchrony_ms": float | None, "pairs": int, "by_player":
    {player: float | None}}``; ``None`` where no tick was shared.
    """
    players = list(onsets)
    means = {p: {tick: sum(ts) / len(ts) for tick, ts in onsets[p].items()} for p in players}
    total, count = 0.0, 0
    per_player = {p: [0.0, 0] for p in players}
    for i, a in enumerate(players):
        for b in players[i + 1 :]:
            shared = means[a].keys() & means[b].keys()
            for tick in shared:
                d = abs(means[a][tick] - means[b][tick])
                total += d
                count += 1
                for p in (a, b):
                    per_player[p][0] += d
                    per_player[p][1] += 1
    return {
        "asynchrony_ms": _round(total / count, 3) if count else None,
        "pairs": count,
        "by_player": {p: (_round(s / c, 3) if c else None) for p, (s, c) in per_player.items()},
    }
