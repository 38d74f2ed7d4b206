"""The scorer's causal tempo tracker and its validation gate (:mod:`rooms.scoring`'s docstring
gives the rules): :class:`TempoTracker`, and :class:`TempoGate`, a mixin of the scorer."""

from __future__ import annotations

import bisect
from collections import deque


class TempoTracker:
    """Causal local linear fit ``played_ms = a + b * expected_ms`` over recent onsets.

    ``b`` is the played/expected time ratio (1.1 = 10% slower than the room
    tempo), clamped to ``[min_ratio, max_ratio]``. The fit runs over the last
    ``window`` distinct expected times (onsets); pairs at the same expected time
    (a chord's notes) are one point at their mean played time, so a chord
    weighs as much as a single note and four chord notes cannot leave the slope
    to one other point. With fewer than two distinct expected times the ratio
    keeps its previous value (1.0 at first) and only the intercept follows the
    player.
    """

    __slots__ = ("_points", "a", "b", "_min", "_max")

    def __init__(self, window: int = 4, min_ratio: float = 0.5, max_ratio: float = 2.0) -> None:
        # [expected ms, sum of played ms, count] per onset, oldest first
        self._points: deque[list[float]] = deque(maxlen=window)
        self.a = 0.0
        self.b = 1.0
        self._min, self._max = min_ratio, max_ratio

    def predict(self, expected_ms: float) -> float:
        """Predicted played time (ms from start_at) of a note expected at ``expected_ms``."""
        return self.a + self.b * expected_ms

    def to_expected(self, played_ms: float) -> float:
        """Inverse of :meth:`predict`."""
        return (played_ms - self.a) / self.b

    def __len__(self) -> int:
        """Distinct expected times (onsets) in the fit."""
        return len(self._points)

    def update(self, expected_ms: float, played_ms: float) -> None:
        """Add one matched (expected, played) pair, ms, and refit."""
        for point in self._points:
            if abs(point[0] - expected_ms) < 0.5:  # same onset (a chord): ms
                point[1] += played_ms
                point[2] += 1
                break
        else:
            self._points.append([expected_ms, played_ms, 1])
        self._refit()

    def forget(self, expected_ms: float, played_ms: float) -> None:
        """Take back a pair given to :meth:`update` (no-op once it left the window)."""
        for point in self._points:
            if abs(point[0] - expected_ms) < 0.5:
                if point[2] <= 1:
                    self._points.remove(point)
                else:
                    point[1] -= played_ms
                    point[2] -= 1
                if self._points:
                    self._refit()
                return

    def restart(self) -> None:
        """Forget every pair but keep the ratio (a jump moves the position, not the tempo)."""
        self._points.clear()

    def _refit(self) -> None:
        points = self._points
        n = len(points)
        mean_x = sum(p[0] for p in points) / n
        mean_y = sum(p[1] / p[2] for p in points) / n
        sxx = sxy = 0.0
        for x, sum_y, count in points:
            dx = x - mean_x
            sxx += dx * dx
            sxy += dx * (sum_y / count - mean_y)
        if sxx > 1.0:  # at least two distinct expected times (ms²)
            self.b = min(self._max, max(self._min, sxy / sxx))
        self.a = mean_y - self.b * mean_x


class TempoGate:
    """What enters the tempo fit: gating, holding and confirming matches, restarts.

    Expects of the host class (:class:`rooms.scoring.Scorer`): the attributes
    ``settings`` (:class:`rooms.scoring_settings.ScoringSettings`),
    ``expected_ms``, ``played_ms``, ``on_match``, ``_tracker``
    (:class:`TempoTracker`), ``_held``, ``_fitted``, ``_fit_log``,
    ``_last_matched_ms`` and ``_next_from``.
    """

    def _gate(self, i: int, x: float, y: float, restart: bool = False) -> None:
        """Fit match ``i`` (expected ``x``, played ``y``, ms) or hold it (:mod:`rooms.scoring`);
        ``restart``: after a pause, the fit restarts from it."""
        s = self.settings
        tracker = self._tracker
        held = self._held
        if restart and not any(self._consistent(h, x, y) for h in held):
            self._restart()
            held.clear()
            self._fit(i, x, y)
            return
        gap = x - self._last_matched_ms
        bound = s.outlier_ms + (s.outlier_ratio * tracker.b * gap if gap > 0 else 0.0)
        # Before two onsets are fitted the ratio is only the prior: nothing to gate on.
        if not restart and (len(tracker) < 2 or abs(y - tracker.predict(x)) <= bound):
            held.clear()  # not confirmed: they stay matched, out of the fit
            self._fit(i, x, y)
            return
        confirmed = [h for h in held if self._consistent(h, x, y)]
        if not confirmed:
            held.append(i)
            if len(held) > 3:
                del held[0]
            return
        held.clear()
        if all(self._shifted(h, x, y) for h in confirmed):
            self._restart()  # a jump moves the position, not the tempo
        for h in sorted(confirmed, key=self.expected_ms.__getitem__):
            played = self.played_ms[h]
            assert played is not None  # held matches are matched
            self._fit(h, self.expected_ms[h], played)
        self._fit(i, x, y)

    def _consistent(self, h: int, x: float, y: float) -> bool:
        """Whether held match ``h`` and a new match at (``x``, ``y``) confirm each other.

        They do when they are shifted alike from the fit (the player jumped) or
        imply a tempo ratio between the bounds from one to the other.
        """
        played = self.played_ms[h]
        if played is None:
            return False
        if self._shifted(h, x, y):
            return True
        s = self.settings
        dx = x - self.expected_ms[h]
        dy = y - played
        slack = s.outlier_ms
        return dx > 1.0 and s.min_tempo_ratio * dx - slack <= dy <= s.max_tempo_ratio * dx + slack

    def _shifted(self, h: int, x: float, y: float) -> bool:
        """Whether held match ``h`` and (``x``, ``y``) lie on one line of the fitted ratio."""
        played = self.played_ms[h]
        if played is None:
            return False
        dy = y - played
        return abs(dy - self._tracker.b * (x - self.expected_ms[h])) <= self.settings.outlier_ms

    def _restart(self) -> None:
        self._tracker.restart()
        for i in self._fit_log:  # no longer in the fit: _unmatch must not forget them
            self._fitted[i] = 0
        self._fit_log.clear()

    def _fit(self, i: int, x: float, y: float) -> None:
        self._tracker.update(x, y)
        self._fitted[i] = 1
        self._fit_log.append(i)
        if x >= self._last_matched_ms:
            self._last_matched_ms = x
            self._next_from = bisect.bisect_right(self.expected_ms, x + 0.5, self._next_from)
        if self.on_match is not None:
            self.on_match(x, y)
