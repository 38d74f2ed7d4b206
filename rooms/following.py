"""A computer partner's timing: when to play its part so it meets the human players.

Pure: a :class:`Follower` is told what the humans played and what time it is,
and answers with the note events to send. Times are ms from the room's
``start_at`` on the server clock, as in :mod:`rooms.scoring`; "score time"
(``expected_ms``) is the room's grid, i.e. the file's times scaled to the room
tempo.

How it follows (``follow=True``), after Dannenberg's on-line accompaniment
(R. B. Dannenberg, "An On-Line Algorithm for Real-Time Accompaniment", ICMC
1984: match the soloist to the score, then adjust the accompaniment's position
and tempo) and the ACCompanion's predict-then-schedule loop (C. E.
Cancino-Chacón et al., "The ACCompanion: Combining Reactivity, Robustness, and
Musical Expressivity in an Automatic Piano Accompanist", IJCAI 2023):

* Listening: every note the human's scorer matches (:class:`rooms.scoring.Scorer`,
  ``on_match``) gives a pair (score time, played time). The same causal local
  linear fit the scorer uses (:class:`rooms.scoring.TempoTracker`) turns those
  pairs into a prediction of when the human reaches any score time.
* Playing: the partner's next onset is sent when the human is predicted to
  reach it, early by the human's one-way latency (half the round-trip time
  measured by the clock exchanges, :mod:`rooms.clock`), so the note is heard
  on time rather than sent on time. Each event is stamped with the time it is
  meant to be heard.
* Reacting: an onset the human has already reached (a matched note at or
  after it) is played at once. For an onset the human also plays, the partner
  waits for the human's note, at most half a beat past the prediction, while
  the network is faster than the prediction is accurate (round trip shorter
  than the mean prediction error): then reacting beats predicting.
* An onset predicted more than 150 ms in the past is skipped, not played late
  (after a jump, or a long stall). A human note more than a beat away from the
  prediction is a jump: the fit restarts from it (keeping the tempo).
* Onsets are played strictly in score order, each at most once.

``follow=False`` plays at the room tempo on the grid, as ``tutti bot`` does.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import groupby

from rooms.notes import Note
from rooms.tempo_tracker import TempoTracker


@dataclass(frozen=True, slots=True)
class FollowSettings:
    """Tuning of :class:`Follower`.

    ``tempo_window``: matched human notes in the tempo fit. ``skip_late_ms``:
    an onset predicted further in the past than this (ms) is skipped.
    ``hold_beats``: how long past the prediction (beats) the partner waits for
    the human on a shared onset. ``jump_beats``: a human note further than this
    (beats) from the prediction restarts the fit. ``min_ratio``/``max_ratio``:
    bounds of the played/score time ratio. ``error_weight``: weight of the
    newest prediction error in its running mean (0–1); ``prior_error_ms`` the
    error assumed before two notes were heard (about a player's jitter, ms).
    """

    tempo_window: int = 4
    skip_late_ms: float = 150.0
    hold_beats: float = 0.5
    jump_beats: float = 1.0
    min_ratio: float = 0.5
    max_ratio: float = 2.0
    error_weight: float = 0.25
    prior_error_ms: float = 25.0


@dataclass(frozen=True, slots=True)
class Cue:
    """One event to send: ``t_ms`` (ms from ``start_at``) is when it is meant to be heard;
    ``tick`` the score tick of the note's onset."""

    type: str
    pitch: int
    velocity: int
    t_ms: float
    tick: int


@dataclass(frozen=True, slots=True)
class _Onset:
    expected_ms: float
    tick: int
    notes: tuple[tuple[int, int, float], ...]  # (pitch, velocity, length in score ms)
    shared: bool


class Follower:
    """Plays one part against the humans' matched notes (see module).

    ``notes``: the partner's part at the file's tempo; ``time_scale`` room
    seconds per file second; ``tempo_bpm`` the room tempo (BPM);
    ``human_ticks`` the onset ticks of the human parts (shared onsets).
    Feed :meth:`heard` and :meth:`set_latency`; call :meth:`due` at
    :meth:`next_wake` (or when something was heard) and send what it returns.
    """

    def __init__(
        self,
        notes: Sequence[Note],
        *,
        time_scale: float,
        tempo_bpm: float,
        human_ticks: Collection[int] = (),
        follow: bool = True,
        settings: FollowSettings | None = None,
    ) -> None:
        self.settings = s = settings or FollowSettings()
        self.follow = follow
        self.beat_ms = 60000.0 / tempo_bpm
        scale = time_scale * 1000.0
        ticks = set(human_ticks)
        ordered = sorted(notes, key=lambda n: (n.onset_tick, n.pitch))
        self._onsets = [
            _Onset(
                group[0].onset_s * scale,
                tick,
                tuple((n.pitch, n.velocity, (n.offset_s - n.onset_s) * scale) for n in group),
                tick in ticks,
            )
            for tick, group in ((t, list(g)) for t, g in groupby(ordered, lambda n: n.onset_tick))
        ]
        self._tracker = TempoTracker(s.tempo_window, s.min_ratio, s.max_ratio)
        self._matches = 0
        self._heard_ms = -math.inf  # furthest score time a human has played
        self.error_ms: float | None = None  # running mean |played - predicted|, ms
        self.lead_ms = 0.0
        self._cursor = 0
        self._offs: list[tuple[float, int, int]] = []  # heap: (stamp, pitch, tick) sounding
        self._last_stamp = -math.inf
        self.played = self.skipped = self.holds = self.refits = self.out_of_order = 0

    # -- listening -------------------------------------------------------------------

    def set_latency(self, rtt_ms: float | None) -> None:
        """The human's round-trip time (ms, ``None`` unknown): aim early by half of it."""
        self.lead_ms = 0.0 if rtt_ms is None else max(0.0, rtt_ms) / 2.0

    def heard(self, expected_ms: float, played_ms: float) -> None:
        """A human note matched at score time ``expected_ms``, played at ``played_ms``."""
        if not self.follow:
            return
        tracker = self._tracker
        error = played_ms - tracker.predict(expected_ms)
        if self._matches and abs(error) > self.settings.jump_beats * self.beat_ms * tracker.b:
            s = self.settings
            fresh = TempoTracker(s.tempo_window, s.min_ratio, s.max_ratio)
            fresh.b = tracker.b  # a jump moves the position, not the tempo
            self._tracker = tracker = fresh
            self.refits += 1
        elif self._matches >= 2:
            w = self.settings.error_weight
            self.error_ms = (
                abs(error) if self.error_ms is None else ((1 - w) * self.error_ms + w * abs(error))
            )
        tracker.update(expected_ms, played_ms)
        self._matches += 1
        self._heard_ms = max(self._heard_ms, expected_ms)

    def predict(self, expected_ms: float) -> float:
        """When the human is predicted to reach score time ``expected_ms`` (ms)."""
        return self._tracker.predict(expected_ms) if self.follow else expected_ms

    @property
    def holding(self) -> bool:
        """Whether shared onsets wait for the human (the network beats the prediction)."""
        error = self.settings.prior_error_ms if self.error_ms is None else self.error_ms
        return self.follow and 2 * self.lead_ms < error

    # -- playing ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Every onset played or skipped and every note released."""
        return self._cursor >= len(self._onsets) and not self._offs

    def _hold_ms(self) -> float:
        return self.settings.hold_beats * self.beat_ms * self._tracker.b if self.follow else 0.0

    def _deadline(self, onset: _Onset) -> float:
        """When (ms) ``onset`` is sent at the latest unless the human reaches it first."""
        hold = self._hold_ms() if onset.shared and self.holding else 0.0
        return self.predict(onset.expected_ms) + hold - self.lead_ms

    def _reached(self, onset: _Onset) -> bool:
        return self.follow and self._heard_ms >= onset.expected_ms - 0.5

    def next_wake(self) -> float | None:
        """When (ms) :meth:`due` has something to send, or ``None`` when done."""
        times = [self._offs[0][0] - self.lead_ms] if self._offs else []
        if self._cursor < len(self._onsets):
            onset = self._onsets[self._cursor]
            times.append(-math.inf if self._reached(onset) else self._deadline(onset))
        return min(times) if times else None

    def due(self, now_ms: float) -> list[Cue]:
        """The events to send at ``now_ms`` (ms), in order; stamps never go back."""
        out: list[Cue] = []
        stamp = max(now_ms + self.lead_ms, self._last_stamp)
        while self._offs and self._offs[0][0] - self.lead_ms <= now_ms:
            off_stamp, pitch, tick = heapq.heappop(self._offs)
            out.append(Cue("off", pitch, 64, max(min(off_stamp, stamp), self._last_stamp), tick))
        while self._cursor < len(self._onsets):
            onset = self._onsets[self._cursor]
            reached = self._reached(onset)
            if not reached and now_ms < self._deadline(onset):
                break
            self._cursor += 1
            waited = onset.shared and self.holding and not reached
            if stamp - self.predict(onset.expected_ms) > self.settings.skip_late_ms and not waited:
                self.skipped += 1
                continue
            self.holds += waited
            out.extend(self._play(onset, stamp))
        if out:
            self._last_stamp = max(self._last_stamp, out[-1].t_ms)
        return out

    def _play(self, onset: _Onset, stamp: float) -> list[Cue]:
        cues = []
        ratio = self._tracker.b if self.follow else 1.0
        for pitch, velocity, length in onset.notes:
            # A pitch still sounding is released first, so the next note-on is heard anew.
            for i, (off_stamp, held, tick) in enumerate(self._offs):
                if held == pitch:
                    off = max(min(off_stamp, stamp), self._last_stamp)
                    cues.append(Cue("off", pitch, 64, off, tick))
                    self._offs.pop(i)
                    heapq.heapify(self._offs)
                    break
            cues.append(Cue("on", pitch, velocity, stamp, onset.tick))
            off = stamp + max(10.0, length * ratio - 20.0)
            heapq.heappush(self._offs, (off, pitch, onset.tick))
        if stamp < self._last_stamp:
            self.out_of_order += 1
        self.played += 1
        return cues

    def release(self, now_ms: float) -> list[Cue]:
        """Note-offs for every note still sounding (the partner is stopped), stamped now."""
        stamp = max(now_ms + self.lead_ms, self._last_stamp)
        cues = [Cue("off", pitch, 64, stamp, tick) for _, pitch, tick in sorted(self._offs)]
        self._offs.clear()
        self._cursor = len(self._onsets)
        return cues

    def stats(self) -> dict[str, int]:
        """``{"onsets", "played", "skipped", "holds", "refits", "out_of_order"}`` (counts)."""
        return {
            "onsets": len(self._onsets),
            "played": self.played,
            "skipped": self.skipped,
            "holds": self.holds,
            "refits": self.refits,
            "out_of_order": self.out_of_order,
        }
