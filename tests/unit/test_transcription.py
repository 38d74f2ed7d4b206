"""rooms.transcription against the real mir_eval.transcription.

``precision_recall_f1`` and :class:`OnlineNoteMatcher` claim to reproduce
``mir_eval.transcription.precision_recall_f1_overlap(..., offset_ratio=None)``
(onset-only, 50 ms, 50 cents). These tests compare them with mir_eval itself
on adversarial note lists (few pitches, onsets clustered around the tolerance
boundary so that many notes compete for the same partners) and on real music.
"""

from __future__ import annotations

import random
import warnings

import mir_eval
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms.performance import choose_mistakes, humanize
from rooms.piece import load_midi
from rooms.transcription import OnlineNoteMatcher, f_measure, precision_recall_f1
from tests.music import chorale_midi

TOL = 1e-12
DURATION_S = 0.1  # mir_eval needs strictly positive durations; offsets are ignored anyway


def hz(pitch: int) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _arrays(notes: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[onset, onset + DURATION_S] for onset, _ in notes], dtype=float)
    pitches = np.array([hz(pitch) for _, pitch in notes], dtype=float)
    return intervals, pitches


def mir_eval_prf(
    reference: list[tuple[float, int]],
    estimated: list[tuple[float, int]],
    onset_tolerance: float = 0.05,
) -> tuple[float, float, float]:
    ref_intervals, ref_pitches = _arrays(reference)
    est_intervals, est_pitches = _arrays(estimated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns about empty note lists
        p, r, f, _overlap = mir_eval.transcription.precision_recall_f1_overlap(
            ref_intervals,
            ref_pitches,
            est_intervals,
            est_pitches,
            onset_tolerance=onset_tolerance,
            pitch_tolerance=50.0,
            offset_ratio=None,
        )
    return float(p), float(r), float(f)


def mir_eval_matches(reference: list[tuple[float, int]], estimated: list[tuple[float, int]]) -> int:
    if not reference or not estimated:
        return 0
    ref_intervals, ref_pitches = _arrays(reference)
    est_intervals, est_pitches = _arrays(estimated)
    matching = mir_eval.transcription.match_notes(
        ref_intervals,
        ref_pitches,
        est_intervals,
        est_pitches,
        onset_tolerance=0.05,
        pitch_tolerance=50.0,
        offset_ratio=None,
    )
    return len(matching)


def assert_same(ours: tuple[float, float, float], theirs: tuple[float, float, float]) -> None:
    assert len(ours) == 3
    for a, b in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b, abs=TOL, rel=0)


# ------------------------------------------------------------------ strategies

# Distances right at, just inside and just outside the 50 ms tolerance, and
# values that land on the 4-decimal rounding boundary mir_eval applies.
BOUNDARY_OFFSETS = [
    0.0,
    0.01,
    0.025,
    0.04999,
    0.05,
    0.0500001,
    0.05004,
    0.05005,
    0.050049999,
    0.05006,
    0.0501,
    0.06,
]
OFFSETS = st.sampled_from(BOUNDARY_OFFSETS + [-x for x in BOUNDARY_OFFSETS if x])
GRID_S = 0.05  # coarse grid equal to the tolerance: neighbours compete for partners
BASE_S = 0.2  # keeps every onset >= 0 (mir_eval rejects negative times)
PITCHES = st.sampled_from([60, 61, 64])


@st.composite
def onset_pitch(draw, grid_max: int = 12) -> tuple[float, int]:
    grid = draw(st.integers(0, grid_max))
    onset = BASE_S + grid * GRID_S + draw(OFFSETS)
    return onset, draw(PITCHES)


note_lists = st.lists(onset_pitch(), min_size=0, max_size=24)


# ----------------------------------------------------------------------- batch


def test_f_measure() -> None:
    assert f_measure(0.0, 0.0) == 0.0
    assert f_measure(1.0, 1.0) == 1.0
    assert f_measure(0.5, 1.0) == pytest.approx(2 / 3)
    assert f_measure(0.0, 1.0) == 0.0


def test_empty_inputs_give_zeros_like_mir_eval() -> None:
    ref = [(0.5, 60), (1.0, 62)]
    for reference, estimated in (([], []), (ref, []), ([], ref)):
        assert precision_recall_f1(reference, estimated) == (0.0, 0.0, 0.0)
        assert mir_eval_prf(reference, estimated) == (0.0, 0.0, 0.0)
    matcher = OnlineNoteMatcher([])
    assert matcher.scores() == (0.0, 0.0, 0.0)
    assert matcher.add(0.5, 60) == 0
    assert matcher.scores() == (0.0, 0.0, 0.0)
    assert OnlineNoteMatcher(ref).scores() == (0.0, 0.0, 0.0)


def test_hand_computed_example() -> None:
    reference = [(1.0, 60), (1.0, 64), (2.0, 62), (3.0, 60)]
    estimated = [
        (1.05, 60),  # exactly at the tolerance: a hit
        (0.96, 64),
        (2.0500001, 62),  # 50.0001 ms rounds to 50.0 ms: a hit, as in mir_eval
        (2.9, 60),  # 100 ms early: no
        (3.0, 61),  # wrong pitch: no
    ]
    p, r, f = precision_recall_f1(reference, estimated)
    assert (p, r) == (3 / 5, 3 / 4)
    assert f == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert_same((p, r, f), mir_eval_prf(reference, estimated))
    # 50.01 ms is outside after rounding to 4 decimals.
    assert precision_recall_f1([(1.0, 60)], [(1.05010, 60)]) == (0.0, 0.0, 0.0)


def test_greedy_matching_would_be_wrong() -> None:
    # The first estimate could take either reference; only a maximum matching gets 2.
    reference = [(1.00, 60), (1.08, 60)]
    estimated = [(1.04, 60), (0.99, 60)]
    matcher = OnlineNoteMatcher(reference)
    assert matcher.add(*estimated[0]) == 1
    assert matcher.add(*estimated[1]) == 2  # the augmenting path moves the first estimate
    assert matcher.scores() == (1.0, 1.0, 1.0)
    assert_same(matcher.scores(), mir_eval_prf(reference, estimated))


def test_other_onset_tolerance() -> None:
    reference = [(1.0, 60), (2.0, 60)]
    estimated = [(1.08, 60), (2.11, 60)]
    assert precision_recall_f1(reference, estimated, onset_tolerance=0.1) == (0.5, 0.5, 0.5)
    assert_same(
        precision_recall_f1(reference, estimated, onset_tolerance=0.1),
        mir_eval_prf(reference, estimated, onset_tolerance=0.1),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reference=note_lists, estimated=note_lists)
def test_batch_equals_mir_eval(reference, estimated) -> None:
    assert_same(precision_recall_f1(reference, estimated), mir_eval_prf(reference, estimated))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reference=note_lists, estimated=note_lists, seed=st.integers(0, 2**32 - 1))
def test_online_equals_batch_after_every_insertion(reference, estimated, seed) -> None:
    order = list(estimated)
    random.Random(seed).shuffle(order)
    matcher = OnlineNoteMatcher(reference)
    assert matcher.n_reference == len(reference)
    for k, (onset, pitch) in enumerate(order, start=1):
        matches = matcher.add(onset, pitch)
        prefix = order[:k]
        assert matcher.n_estimated == k
        assert matches == matcher.matches == mir_eval_matches(reference, prefix)
        batch = precision_recall_f1(reference, prefix)
        assert matcher.scores() == batch
        assert_same(batch, mir_eval_prf(reference, prefix))


# ------------------------------------------------------------------ real music


def _chorale_notes() -> list[tuple[float, int]]:
    piece = load_midi(chorale_midi("bach/bwv66.6"))
    # All four voices together: unisons between voices share pitch and onset.
    return sorted((n.onset_s, n.pitch) for part in piece.parts for n in part.notes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_real_chorale_performance_equals_mir_eval(seed) -> None:
    piece = load_midi(chorale_midi("bach/bwv66.6"))
    reference: list[tuple[float, int]] = []
    estimated: list[tuple[float, int]] = []
    for index, part in enumerate(piece.parts):
        reference += [(n.onset_s, n.pitch) for n in part.notes]
        mistakes = choose_mistakes(part.notes, dropped=2, wrong=2, seed=seed * 10 + index)
        # ±60 ms jitter: some notes fall outside the 50 ms tolerance, most inside.
        events = humanize(
            part.notes, jitter_ms=60, mistakes=mistakes, seed=seed * 100 + index, tempo_ratio=1.0
        )
        estimated += [(max(0.0, e.t_ms / 1000.0), e.pitch) for e in events if e.type == "on"]
    assert len(reference) == len(_chorale_notes())
    theirs = mir_eval_prf(reference, estimated)
    assert 0.5 < theirs[2] < 1.0  # a real mix of hits and misses
    assert_same(precision_recall_f1(reference, estimated), theirs)

    rng = random.Random(seed)
    order = list(estimated)
    rng.shuffle(order)
    matcher = OnlineNoteMatcher(reference)
    for k, (onset, pitch) in enumerate(order, start=1):
        matcher.add(onset, pitch)
        if k % 17 == 0 or k == len(order):  # every prefix would be slow with mir_eval
            assert_same(matcher.scores(), mir_eval_prf(reference, order[:k]))
    assert_same(matcher.scores(), theirs)


def test_real_chorale_played_exactly_is_perfect() -> None:
    reference = _chorale_notes()
    assert precision_recall_f1(reference, reference) == (1.0, 1.0, 1.0)
    # 50 ms late everywhere: at the tolerance after mir_eval's rounding, so still perfect.
    shifted = [(onset + 0.05, pitch) for onset, pitch in reference]
    assert precision_recall_f1(reference, shifted) == (1.0, 1.0, 1.0)
    assert_same(precision_recall_f1(reference, shifted), mir_eval_prf(reference, shifted))
