"""The judgement windows and matching parameters of :class:`rooms.scoring.Scorer`."""

from __future__ import annotations

from dataclasses import dataclass

JUDGEMENTS = ("perfect", "great", "good", "poor", "miss")


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    """Judgement windows and matching parameters; every number in ms unless named.

    ``perfect_ms``/``great_ms``/``good_ms``: largest absolute onset deviation
    (ms) for each judgement; beyond ``good_ms`` a matched note is ``poor``.
    ``match_window_ms``: how far from its predicted time a note of the right
    pitch is still matched. ``wrong_pitch_window_ms``: how far a note of
    another pitch counts as a wrong pitch for an expected note rather than an
    extra. ``onset_tolerance_ms``: mir_eval's onset tolerance for
    precision/recall/F1. ``tempo_window``: matched notes in the local tempo
    fit. ``tempo_slack``: how much the match window widens per ms of score
    time since the last match (ms/ms; must stay below ``min_tempo_ratio``).
    The defaults (4 notes, 0.3) lose no note when any 8 notes of a Bach
    chorale are played 30 % slower (``tests/unit/test_scoring.py``).
    ``min_tempo_ratio``/``max_tempo_ratio``: bounds of the fitted
    played/expected time ratio (2.0 = half the room tempo).
    ``outlier_ms``/``outlier_ratio``: the tempo fit's validation gate, a
    match enters the fit at once when ``|played - predicted|`` is at most
    ``outlier_ms + outlier_ratio * b * (expected - latest fitted expected)``
    (ms; ``b`` the fitted ratio), else only once confirmed (module docstring);
    ``outlier_ms`` is also the margin by which a later note must be nearer
    an expected note's predicted time to take it back. ``hold_ms``: after a
    pause, how late a note of the next onset is still matched there (module
    docstring).
    """

    perfect_ms: float = 25.0
    great_ms: float = 50.0
    good_ms: float = 100.0
    match_window_ms: float = 350.0
    wrong_pitch_window_ms: float = 150.0
    onset_tolerance_ms: float = 50.0
    tempo_window: int = 4
    tempo_slack: float = 0.3
    min_tempo_ratio: float = 0.5
    max_tempo_ratio: float = 2.0
    outlier_ms: float = 50.0
    outlier_ratio: float = 0.5
    hold_ms: float = 4000.0

    def __post_init__(self) -> None:
        if not 0 < self.perfect_ms <= self.great_ms <= self.good_ms:
            raise ValueError(
                "judgement windows must satisfy 0 < perfect_ms <= great_ms <= good_ms, got "
                f"{self.perfect_ms}, {self.great_ms}, {self.good_ms}"
            )
        if self.match_window_ms <= 0 or self.wrong_pitch_window_ms < 0:
            raise ValueError("match_window_ms must be > 0 and wrong_pitch_window_ms >= 0")
        if not 0 <= self.tempo_slack < self.min_tempo_ratio:
            raise ValueError(
                f"tempo_slack must be >= 0 and below min_tempo_ratio, got {self.tempo_slack}"
            )
        if self.outlier_ms <= 0 or self.outlier_ratio < 0:
            raise ValueError("outlier_ms must be > 0 and outlier_ratio >= 0")
        if self.tempo_window < 2:
            raise ValueError(f"tempo_window must be at least 2 notes, got {self.tempo_window}")

    def judge(self, deviation_ms: float) -> str:
        """Judgement of a matched note from its signed onset deviation (ms)."""
        d = abs(deviation_ms)
        if d <= self.perfect_ms:
            return "perfect"
        if d <= self.great_ms:
            return "great"
        if d <= self.good_ms:
            return "good"
        return "poor"
