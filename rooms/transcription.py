"""Note-level transcription metrics, as ``mir_eval.transcription``.

``precision_recall_f1`` reproduces ``mir_eval.transcription.precision_recall_f1_overlap``
(Raffel et al., "mir_eval: A Transparent Implementation of Common MIR Metrics",
ISMIR 2014) with ``offset_ratio=None`` (onsets only), ``pitch_tolerance=50``
cents and the default ``onset_tolerance=0.05`` s:

* a reference and an estimated note may match when their pitches are within
  50 cents — for integer MIDI note numbers, when they are equal — and their
  onsets differ by at most ``onset_tolerance`` after rounding the difference to
  4 decimals (mir_eval's ``N_DECIMALS``);
* the matching is a maximum bipartite matching (mir_eval uses
  Hopcroft–Karp); precision = matches / estimated, recall = matches /
  reference, F1 their harmonic mean; all 0.0 when either list is empty.

:class:`OnlineNoteMatcher` keeps that maximum matching while estimated notes
arrive one by one: each new note searches one augmenting path (Kuhn's
algorithm), which keeps the matching maximum after every insertion, so the live
figures always equal what mir_eval would report on the notes so far.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

N_DECIMALS = 4  # mir_eval.transcription rounds onset distances to this many decimals
_SCALE = 10**N_DECIMALS


def _onset_hit(ref_onset_s: float, est_onset_s: float, tolerance_s: float) -> bool:
    # np.around(x, 4) is rint(x * 1e4) / 1e4 with round-half-even; round() matches it.
    return round(abs(ref_onset_s - est_onset_s) * _SCALE) / _SCALE <= tolerance_s


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (both 0–1); 0.0 when both are 0, as mir_eval."""
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


class OnlineNoteMatcher:
    """Maximum onset/pitch matching of estimated notes against fixed reference notes.

    ``reference`` is a sequence of ``(onset_s, pitch)`` pairs: onset in seconds,
    pitch a MIDI note number. Estimated notes are added with :meth:`add` in any
    order. ``onset_tolerance`` is in seconds (default 0.05 s, as mir_eval).
    """

    def __init__(
        self, reference: Sequence[tuple[float, int]], onset_tolerance: float = 0.05
    ) -> None:
        self.onset_tolerance = onset_tolerance
        self._n_ref = len(reference)
        by_pitch: dict[int, list[tuple[float, int]]] = {}
        for index, (onset, pitch) in enumerate(reference):
            by_pitch.setdefault(pitch, []).append((onset, index))
        self._ref_onsets: dict[int, list[float]] = {}
        self._ref_index: dict[int, list[int]] = {}
        for pitch, items in by_pitch.items():
            items.sort()
            self._ref_onsets[pitch] = [onset for onset, _ in items]
            self._ref_index[pitch] = [index for _, index in items]
        self._edges: list[list[int]] = []  # est -> candidate ref indices
        self._ref_match: dict[int, int] = {}  # ref -> est
        self._est_match: list[int | None] = []
        self.matches = 0

    @property
    def n_reference(self) -> int:
        return self._n_ref

    @property
    def n_estimated(self) -> int:
        return len(self._edges)

    def add(self, onset_s: float, pitch: int) -> int:
        """Add one estimated note (onset in s, MIDI pitch); return the number of matches."""
        edges: list[int] = []
        onsets = self._ref_onsets.get(pitch)
        if onsets is not None:
            # Widen the bisect range a little: the exact test is the rounded one.
            margin = self.onset_tolerance + 1.0 / _SCALE
            lo = bisect.bisect_left(onsets, onset_s - margin)
            hi = bisect.bisect_right(onsets, onset_s + margin, lo)
            indices = self._ref_index[pitch]
            for k in range(lo, hi):
                if _onset_hit(onsets[k], onset_s, self.onset_tolerance):
                    edges.append(indices[k])
        est = len(self._edges)
        self._edges.append(edges)
        self._est_match.append(None)
        if edges and self._augment(est, set()):
            self.matches += 1
        return self.matches

    def _augment(self, est: int, seen: set[int]) -> bool:
        # Kuhn's augmenting-path search; paths are short because edges are local in time.
        for ref in self._edges[est]:
            if ref in seen:
                continue
            seen.add(ref)
            other = self._ref_match.get(ref)
            if other is None or self._augment(other, seen):
                self._ref_match[ref] = est
                self._est_match[est] = ref
                return True
        return False

    def scores(self) -> tuple[float, float, float]:
        """Return ``(precision, recall, f1)`` for the notes so far, each 0–1."""
        if self._n_ref == 0 or not self._edges:
            return 0.0, 0.0, 0.0
        precision = self.matches / len(self._edges)
        recall = self.matches / self._n_ref
        return precision, recall, f_measure(precision, recall)


def precision_recall_f1(
    reference: Sequence[tuple[float, int]],
    estimated: Iterable[tuple[float, int]],
    onset_tolerance: float = 0.05,
) -> tuple[float, float, float]:
    """Onset-only note precision, recall and F1, as mir_eval (see module docstring).

    ``reference`` and ``estimated`` are ``(onset_s, midi_pitch)`` pairs;
    ``onset_tolerance`` in seconds. Returns ``(precision, recall, f1)``, each 0–1.
    """
    matcher = OnlineNoteMatcher(reference, onset_tolerance)
    for onset, pitch in estimated:
        matcher.add(onset, pitch)
    return matcher.scores()
