"""rooms.scoring: judgement windows, exact counts on real music, tempo tracking, asynchrony.

Real parts come from music21's corpus (Bach chorale BWV 66.6, BWV 4.8 and
Joplin's Maple Leaf Rag); mistakes are injected with
:func:`rooms.performance.choose_mistakes` and :func:`rooms.performance.humanize`
so every test knows exactly what was played wrong.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms.notes import Note
from rooms.performance import (
    PlannedEvent,
    choose_mistakes,
    humanize,
    issue_plans,
    sorted_notes,
    tempo_plan,
)
from rooms.piece import Piece, load_midi
from rooms.scoring import JUDGEMENTS, Scorer, ScoringSettings, TempoTracker, asynchrony
from rooms.transcription import precision_recall_f1
from tests.music import chorale_midi

TICKS = 480


@functools.cache
def piece(name: str = "bach/bwv66.6") -> Piece:
    return load_midi(chorale_midi(name))


def make_notes(spec: Iterable[tuple[float, int]], *, bpm: float = 120.0, beats: float = 0.5):
    """Notes from ``(onset_beat, pitch)`` pairs at a fixed tempo, each ``beats`` long."""
    beat_s = 60.0 / bpm
    return [
        Note(
            pitch=pitch,
            velocity=80,
            onset_s=onset * beat_s,
            offset_s=(onset + beats) * beat_s,
            onset_beat=onset,
            offset_beat=onset + beats,
            onset_tick=round(onset * TICKS),
        )
        for onset, pitch in spec
    ]


def feed(scorer: Scorer, events: Sequence[PlannedEvent]) -> list[str]:
    outcomes = []
    for event in events:
        if event.type == "on":
            outcomes.append(scorer.note_on(event.pitch, event.t_ms))
        else:
            scorer.note_off(event.pitch, event.t_ms)
    return outcomes


def check_invariants(result: dict) -> None:
    assert result["notes_expected"] == result["notes_matched"] + result["missed"]
    assert result["notes_played"] == (
        result["notes_matched"] + result["wrong_pitch"] + result["extra"]
    )
    assert sum(result["judgements"].values()) == result["notes_expected"]
    assert result["judgements"]["miss"] == result["missed"]
    for key in ("accuracy", "precision", "recall", "f1"):
        assert 0.0 <= result[key] <= 1.0
    if "notes" in result:
        details = result["notes"]
        assert len(details) == result["notes_expected"]
        assert sum(d["played_ms"] is not None for d in details) == result["notes_matched"]
        assert sum("played_pitch" in d for d in details) == result["wrong_pitch"]


def each_expected_matched_once(scorer: Scorer, outcomes: Sequence[str]) -> None:
    """Every "matched" note-on filled a different expected note (or was taken back)."""
    # A note-on is only ever matched to a still unmatched expected note, so if
    # one expected note had been matched twice, fewer would be filled than
    # "matched" outcomes were returned.
    filled = sum(t is not None for t in scorer.played_ms)
    assert outcomes.count("matched") - scorer.taken_back == scorer.notes_matched == filled


# ---------------------------------------------------------- judgement windows


@pytest.mark.parametrize(
    ("deviation", "judgement"),
    [
        (0.0, "perfect"),
        (25.0, "perfect"),
        (-25.0, "perfect"),
        (25.001, "great"),
        (-50.0, "great"),
        (50.0, "great"),
        (50.001, "good"),
        (100.0, "good"),
        (-100.0, "good"),
        (100.001, "poor"),
        (-340.0, "poor"),
    ],
)
def test_judge_boundaries_are_inclusive(deviation, judgement) -> None:
    assert ScoringSettings().judge(deviation) == judgement


def test_custom_windows() -> None:
    s = ScoringSettings(perfect_ms=10, great_ms=10, good_ms=30)
    assert [s.judge(d) for d in (10, 10.5, 30, 31)] == ["perfect", "good", "good", "poor"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"perfect_ms": 0}, "judgement windows"),
        ({"perfect_ms": -5}, "judgement windows"),
        ({"perfect_ms": 60}, "judgement windows"),  # > great_ms
        ({"great_ms": 120}, "judgement windows"),  # > good_ms
        ({"good_ms": 40}, "judgement windows"),  # < great_ms
        ({"match_window_ms": 0}, "match_window_ms"),
        ({"wrong_pitch_window_ms": -1}, "wrong_pitch_window_ms"),
        ({"tempo_window": 1}, "tempo_window"),
    ],
)
def test_settings_validation(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ScoringSettings(**kwargs)


def test_scorer_validation() -> None:
    notes = make_notes([(0, 60)])
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="time_scale"):
            Scorer(notes, time_scale=bad)
    with pytest.raises(ValueError, match="tempo_bpm"):
        Scorer(notes, tempo_bpm=0)


def test_judgements_through_the_scorer() -> None:
    # One note a second at 120 BPM: expected at 1000, 2000, ... ms exactly.
    deviations = [0.0, 25.0, -25.0, 25.5, 50.0, -50.5, 100.0, -100.5, 200.0]
    notes = make_notes([(2 * (k + 1), 60 + k) for k in range(len(deviations))])
    scorer = Scorer(notes)
    assert scorer.expected_ms == [1000.0 * (k + 1) for k in range(len(deviations))]
    for k, d in enumerate(deviations):
        assert scorer.note_on(60 + k, 1000.0 * (k + 1) + d) == "matched"
    result = scorer.result(final=True)
    assert result["judgements"] == {"perfect": 3, "great": 2, "good": 2, "poor": 2, "miss": 0}
    assert [n["judgement"] for n in result["notes"]] == [
        "perfect", "perfect", "perfect", "great", "great", "good", "good", "poor", "poor",
    ]  # fmt: skip
    assert [n["deviation_ms"] for n in result["notes"]] == deviations
    assert result["onset_mean_ms"] == pytest.approx(sum(deviations) / len(deviations), abs=1e-3)
    assert set(result["judgements"]) == set(JUDGEMENTS)


def test_time_scale_and_room_tempo() -> None:
    notes = make_notes([(0, 60), (1, 62), (2, 64)])  # 0, 500, 1000 ms at the file's 120 BPM
    scorer = Scorer(notes, time_scale=0.5, tempo_bpm=240.0)  # room at twice the file tempo
    assert scorer.expected_ms == [0.0, 250.0, 500.0]
    for pitch, t in ((60, 0.0), (62, 250.0), (64, 500.0)):
        assert scorer.note_on(pitch, t) == "matched"
    assert scorer.tempo_bpm_played() == pytest.approx(240.0)
    assert scorer.predicted_end_ms() == pytest.approx(625.0)  # last offset: 2.5 beats


# ------------------------------------------------- exact counts on real music


@pytest.mark.parametrize("part_name", ["Soprano", "Alto", "Tenor", "Bass"])
@pytest.mark.parametrize("seed", [1, 2])
def test_injected_mistakes_are_counted_exactly(part_name, seed) -> None:
    chorale = piece()
    notes = chorale.part(part_name).notes
    mistakes = choose_mistakes(notes, dropped=3, wrong=2, seed=seed)
    events = humanize(notes, jitter_ms=15, mistakes=mistakes, seed=seed)
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    outcomes = feed(scorer, events)
    result = scorer.result(final=True)
    check_invariants(result)
    assert outcomes.count("wrong_pitch") == 2 and outcomes.count("extra") == 0
    assert result["notes_expected"] == len(notes)
    assert result["notes_played"] == len(notes) - 3
    assert result["notes_matched"] == len(notes) - 5
    assert result["wrong_pitch"] == 2
    assert result["missed"] == 5
    assert result["extra"] == 0
    assert result["accuracy"] == pytest.approx((len(notes) - 5) / len(notes), abs=1e-6)
    # ±15 ms jitter is within "perfect".
    assert result["judgements"]["perfect"] == result["notes_matched"]
    details = result["notes"]
    for i in mistakes.dropped:
        assert details[i]["judgement"] == "miss" and details[i]["played_ms"] is None
        assert "played_pitch" not in details[i]
    for i, wrong_pitch in mistakes.wrong:
        assert details[i]["judgement"] == "miss"
        assert details[i]["played_pitch"] == wrong_pitch
    missed_at = {i for i, d in enumerate(details) if d["judgement"] == "miss"}
    assert missed_at == set(mistakes.dropped) | {i for i, _ in mistakes.wrong}
    # precision/recall/F1: mir_eval's metrics on the grid (see test_transcription).
    played = [(e.t_ms / 1000.0, e.pitch) for e in events if e.type == "on"]
    grid = [(n.onset_s, n.pitch) for n in sorted_notes(notes)]
    p, r, f = precision_recall_f1(grid, played)
    assert (result["precision"], result["recall"], result["f1"]) == (
        round(p, 6),
        round(r, 6),
        round(f, 6),
    )
    assert result["recall"] == pytest.approx((len(notes) - 5) / len(notes), abs=1e-6)
    each_expected_matched_once(scorer, outcomes)


def test_extra_notes_are_extra() -> None:
    chorale = piece()
    notes = sorted_notes(chorale.part("Tenor").notes)
    events = humanize(notes, jitter_ms=15, seed=7)
    # An extra note in the middle of every gap of at least 600 ms, on a pitch
    # the part never plays, so it is nowhere near a note of its own pitch.
    foreign = 100
    assert foreign not in {n.pitch for n in notes}
    extras = []
    for before, after in zip(notes, notes[1:], strict=False):
        gap_ms = (after.onset_s - before.onset_s) * 1000
        if gap_ms >= 600:
            t = (before.onset_s + after.onset_s) * 500
            extras += [PlannedEvent("on", foreign, 80, t), PlannedEvent("off", foreign, 0, t + 50)]
    assert len(extras) >= 4 * 2
    played = sorted(events + extras, key=lambda e: (e.t_ms, e.type == "on"))
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    feed(scorer, played)
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["extra"] == len(extras) // 2
    assert result["notes_matched"] == len(notes)
    assert result["missed"] == 0 and result["wrong_pitch"] == 0
    assert result["precision"] == pytest.approx(len(notes) / (len(notes) + len(extras) // 2))
    assert result["recall"] == 1.0
    assert scorer.note_offs == len(played) // 2


def test_dropped_wrong_and_extra_together() -> None:
    chorale = piece("bach/bwv4.8")
    notes = chorale.part("Bass").notes
    mistakes = choose_mistakes(notes, dropped=4, wrong=3, seed=5)
    events = humanize(notes, jitter_ms=10, mistakes=mistakes, seed=5)
    ordered = sorted_notes(notes)
    # Play the first note twice in quick succession: the second press is extra.
    first = ordered[0]
    events.append(PlannedEvent("on", first.pitch, 80, first.onset_s * 1000 + 30))
    events.sort(key=lambda e: (e.t_ms, e.type == "on"))
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    outcomes = feed(scorer, events)
    result = scorer.result(final=True)
    check_invariants(result)
    assert (result["missed"], result["wrong_pitch"], result["extra"]) == (7, 3, 1)
    assert result["notes_matched"] == len(notes) - 7
    each_expected_matched_once(scorer, outcomes)


# ---------------------------------------------------------------------- chords


def test_every_chord_note_is_matched_on_its_own() -> None:
    # Four C major triads half a beat apart (same pitches again and again),
    # each chord's notes played in a scrambled order within ±20 ms.
    chord = (60, 64, 67)
    notes = make_notes([(k * 0.5, p) for k in range(4) for p in chord])
    rng = random.Random(3)
    scorer = Scorer(notes)
    for k in range(4):
        pitches = list(chord)
        rng.shuffle(pitches)
        for pitch in pitches:
            assert scorer.note_on(pitch, k * 250.0 + rng.uniform(-20, 20)) == "matched"
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes_matched"] == 12 and result["extra"] == 0
    # Each note went to its own chord: all deviations within the played spread.
    assert all(abs(n["deviation_ms"]) <= 20 for n in result["notes"])
    each_expected_matched_once(scorer, ["matched"] * 12)


def test_a_chord_note_played_twice_is_extra() -> None:
    notes = make_notes([(0, 60), (0, 64), (0, 67), (4, 60)])  # second C two seconds later
    scorer = Scorer(notes)
    assert scorer.note_on(60, 0.0) == "matched"
    # The second C: no unmatched C nearby, so it is taken as a wrong note for G...
    assert scorer.note_on(60, 10.0) == "wrong_pitch"
    assert scorer.note_on(64, 15.0) == "matched"
    # ...until the G comes: the G takes its slot back and the repeated C is extra.
    assert scorer.note_on(67, 20.0) == "matched"
    result = scorer.result()
    assert (result["notes_matched"], result["wrong_pitch"], result["extra"]) == (3, 0, 1)
    assert scorer.note_on(60, 2000.0) == "matched"
    assert scorer.note_on(60, 2001.0) == "extra"  # nothing left to take it
    result = scorer.result(final=True)
    check_invariants(result)
    assert (result["notes_matched"], result["extra"], result["missed"]) == (4, 2, 0)
    each_expected_matched_once(scorer, ["matched"] * 4)


def test_wrong_chord_note_before_the_rest_of_the_chord() -> None:
    # C-E-G expected; the player plays C, then F instead of E, then G. The F
    # is first taken as a wrong note for G (equally near); when the G comes the
    # F moves to the E, which is never played: one wrong pitch, nothing extra.
    notes = make_notes([(0, 60), (0, 64), (0, 67)])
    scorer = Scorer(notes)
    assert scorer.note_on(60, 0.0) == "matched"
    assert scorer.note_on(65, 5.0) == "wrong_pitch"
    assert scorer.note_on(67, 10.0) == "matched"
    result = scorer.result(final=True)
    check_invariants(result)
    assert (result["notes_matched"], result["wrong_pitch"], result["extra"]) == (2, 1, 0)
    assert result["missed"] == 1
    assert result["notes"][1]["played_pitch"] == 65  # recorded at the E
    assert "played_pitch" not in result["notes"][2]


@functools.cache
def rag_right_hand() -> tuple[Note, ...]:
    # music21 writes the treble staff (the right hand) as the first "Piano" track;
    # splitting it at middle C would leave an empty left hand.
    return piece("joplin/maple_leaf_rag").part("Piano").notes


@pytest.mark.parametrize("seed", [1, 2])
def test_maple_leaf_rag_right_hand_chords(seed) -> None:
    notes = rag_right_hand()
    onsets = [n.onset_tick for n in notes]
    chords = {t for t in onsets if onsets.count(t) >= 2}
    assert len(chords) > 300  # really a chordal part
    mistakes = choose_mistakes(notes, dropped=5, wrong=4, seed=seed)
    events = humanize(notes, jitter_ms=12, mistakes=mistakes, seed=seed)
    rag = piece("joplin/maple_leaf_rag")
    scorer = Scorer(notes, tempo_bpm=rag.bpm)
    outcomes = feed(scorer, events)
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["missed"] == 9
    assert result["wrong_pitch"] == 4
    assert result["extra"] == 0
    assert result["notes_matched"] == len(notes) - 9
    # Every played note found its own expected note, not a neighbour of the same pitch.
    details = result["notes"]
    assert all(abs(n["deviation_ms"]) <= 12 + 1e-6 for n in details if n["played_ms"] is not None)
    # Each wrong pitch is recorded at the chord note it replaced, even when the other
    # chord notes arrive after it (they take back a slot the wrong note had borrowed).
    wrong_at = {(i, n["played_pitch"]) for i, n in enumerate(details) if "played_pitch" in n}
    assert wrong_at == set(mistakes.wrong)
    each_expected_matched_once(scorer, outcomes)


# ---------------------------------------------------------------- tempo tracking


@pytest.mark.parametrize("part_name", ["Soprano", "Alto", "Tenor", "Bass"])
@pytest.mark.parametrize("tempo_ratio", [0.92, 1.15])
def test_player_off_the_room_tempo_is_tracked(part_name, tempo_ratio) -> None:
    chorale = piece()
    notes = chorale.part(part_name).notes
    events = humanize(notes, tempo_ratio=tempo_ratio, jitter_ms=15, seed=4)
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    assert set(feed(scorer, events)) == {"matched"}
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes_matched"] == len(notes)
    assert result["tempo_bpm_played"] == pytest.approx(chorale.bpm * tempo_ratio, rel=0.01)
    # The grid alone would have lost the end of the piece: those notes are
    # further from the grid than the match window, yet they were matched.
    window = scorer.settings.match_window_ms
    far = [n for n in result["notes"] if abs(n["deviation_ms"]) > window]
    assert len(far) >= 5
    sign = 1 if tempo_ratio < 1 else -1
    assert all(sign * n["deviation_ms"] > window for n in far)
    # The predicted end follows the player, not the grid.
    played_end = max(e.t_ms for e in events)
    assert scorer.predicted_end_ms() == pytest.approx(played_end, abs=300)


def test_slow_player_on_a_longer_chorale() -> None:
    chorale = piece("bach/bwv4.8")
    for part in chorale.parts:
        events = humanize(part.notes, tempo_ratio=0.92, jitter_ms=15, seed=8)
        scorer = Scorer(part.notes, tempo_bpm=chorale.bpm)
        feed(scorer, events)
        result = scorer.result(final=True)
        assert result["notes_matched"] == len(part.notes), part.name
        assert result["onset_mean_ms"] > 1000  # on average more than a second behind the grid
        assert result["tempo_bpm_played"] == pytest.approx(chorale.bpm * 0.92, rel=0.01)


def ritardando(x_ms: float, start_ms: float, end_ms: float, slower: float) -> float:
    """Played time of grid time ``x_ms``: ``slower`` × slower between start and end, then
    back at tempo, keeping the lateness gathered during the passage."""
    if x_ms <= start_ms:
        return x_ms
    if x_ms <= end_ms:
        return start_ms + (x_ms - start_ms) * slower
    return start_ms + (end_ms - start_ms) * slower + (x_ms - end_ms)


@pytest.mark.parametrize("part_name", ["Soprano", "Alto", "Tenor", "Bass"])
def test_ritardando_passage_then_back_to_tempo(part_name) -> None:
    chorale = piece()
    notes = sorted_notes(chorale.part(part_name).notes)
    first = len(notes) // 2 - 4  # eight notes in the middle, 30 % slower
    start_ms, end_ms = notes[first].onset_s * 1000, notes[first + 8].onset_s * 1000
    rng = random.Random(9)
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    for note in notes:
        t = ritardando(note.onset_s * 1000, start_ms, end_ms, 1.3) + rng.uniform(-15, 15)
        assert scorer.note_on(note.pitch, t) == "matched"
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes_matched"] == len(notes)
    lateness = (end_ms - start_ms) * 0.3
    assert lateness > 2 * scorer.settings.match_window_ms  # the grid alone would fail
    last = result["notes"][-1]
    assert last["deviation_ms"] == pytest.approx(lateness, abs=16)
    assert result["tempo_bpm_played"] < chorale.bpm


@pytest.mark.parametrize(("factor", "lost_at_most"), [(1.3, 0.0), (0.75, 0.005)])
def test_a_slow_or_rushed_passage_anywhere_keeps_the_player(factor, lost_at_most) -> None:
    """Eight notes 30 % slower (or 25 % faster), then back to tempo, at every position.

    The lateness (or earliness) stays for the rest of the piece; the tracker must
    follow it, also across the long notes at the ends of phrases. Slowing down
    loses nothing; rushing loses at most 0.5 % of the notes (measured: 5 of
    ~2800 when the rush ends on a short note right before a long one).
    """
    lost = total = 0
    for name in ("bach/bwv66.6", "bach/bwv4.8"):
        chorale = load_midi(chorale_midi(name))
        for part in chorale.parts:
            notes = sorted_notes(part.notes)
            for first in range(2, len(notes) - 10, 3):
                start_ms, end_ms = notes[first].onset_s * 1000, notes[first + 8].onset_s * 1000
                rng = random.Random(first)
                scorer = Scorer(notes, tempo_bpm=chorale.bpm)
                for note in notes:
                    t = ritardando(note.onset_s * 1000, start_ms, end_ms, factor)
                    scorer.note_on(note.pitch, t + rng.uniform(-15, 15))
                result = scorer.result(final=True)
                lost += len(notes) - result["notes_matched"]
                total += len(notes)
    assert lost <= lost_at_most * total, (lost, total)


def test_tempo_tracker_fit() -> None:
    tracker = TempoTracker(window=4)
    assert (tracker.a, tracker.b) == (0.0, 1.0)
    tracker.update(1000.0, 1100.0)  # one point: only the intercept moves
    assert (tracker.a, tracker.b) == (100.0, 1.0)
    tracker.update(1000.0, 1120.0)  # same expected time: the ratio stays
    assert tracker.b == 1.0 and tracker.a == pytest.approx(110.0)
    tracker = TempoTracker(window=4)
    for x in (0.0, 500.0, 1000.0, 1500.0):
        tracker.update(x, 200.0 + 1.25 * x)
    assert tracker.b == pytest.approx(1.25) and tracker.a == pytest.approx(200.0)
    assert tracker.predict(2000.0) == pytest.approx(2700.0)
    assert tracker.to_expected(2700.0) == pytest.approx(2000.0)
    for x in (2000.0, 2500.0, 3000.0, 3500.0):  # the window forgets the first four
        tracker.update(x, 3.0 * x)
    assert tracker.b == 2.0  # clamped to max_ratio
    for x in (4000.0, 4500.0, 5000.0, 5500.0):
        tracker.update(x, 0.1 * x)
    assert tracker.b == 0.5  # clamped to min_ratio


# ------------------------------------------------------ mistakes and the steal rule


def test_wrong_then_right_becomes_matched_plus_extra() -> None:
    notes = make_notes([(0, 60), (2, 62), (4, 64)])
    scorer = Scorer(notes)
    assert scorer.note_on(60, 0.0) == "matched"
    assert scorer.note_on(63, 990.0) == "wrong_pitch"  # instead of the D at 1000 ms
    live = scorer.result()
    assert (live["wrong_pitch"], live["extra"], live["notes_matched"]) == (1, 0, 1)
    assert scorer.note_on(62, 1010.0) == "matched"  # the right one after all
    live = scorer.result()
    assert (live["wrong_pitch"], live["extra"], live["notes_matched"]) == (0, 1, 2)
    assert scorer.note_on(64, 2000.0) == "matched"
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes"][1]["played_ms"] == 1010.0
    assert "played_pitch" not in result["notes"][1]


def test_wrong_pitch_outside_its_window_is_extra() -> None:
    notes = make_notes([(0, 60), (2, 62)])  # 0 and 1000 ms
    scorer = Scorer(notes)
    scorer.note_on(60, 0.0)
    assert scorer.note_on(70, 500.0) == "extra"  # 500 ms from anything
    assert scorer.note_on(70, 1000.0 - 150.0) == "wrong_pitch"  # boundary inclusive
    assert scorer.note_on(71, 1000.0) == "extra"  # its only candidate is taken already
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes"][1]["played_pitch"] == 70


def test_match_window_boundary() -> None:
    notes = make_notes([(0, 60), (8, 60)])  # 0 and 4000 ms
    scorer = Scorer(notes)
    assert scorer.note_on(60, 350.0) == "matched"  # exactly the window: matched
    scorer = Scorer(notes)
    assert scorer.note_on(60, 350.5) == "extra"


def test_live_missed_versus_final() -> None:
    chorale = piece()
    notes = sorted_notes(chorale.part("Soprano").notes)
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    k = 10
    for note in notes[:k]:  # exactly on the grid, then the player stops
        scorer.note_on(note.pitch, note.onset_s * 1000)
    assert scorer.missed == 0
    expected = scorer.expected_ms
    settings = scorer.settings

    def window_end(i: int) -> float:  # the window widens with the time since the last match
        gap = expected[i] - expected[k - 1]
        return expected[i] + settings.match_window_ms + settings.tempo_slack * gap

    scorer.advance(window_end(k + 2) + 1)  # notes k..k+2 are past their window
    assert window_end(k + 3) >= window_end(k + 2) + 1
    live = scorer.result()
    assert live["missed"] == scorer.missed == 3
    assert live["judgements"]["miss"] == 3
    assert "notes" not in live
    assert live["notes_expected"] == live["notes_matched"] + live["missed"] + (len(notes) - k - 3)
    scorer.advance(0.0)  # time does not run backwards
    assert scorer.missed == 3
    final = scorer.result(final=True, complete=False)
    check_invariants(final)
    assert final["missed"] == len(notes) - k
    assert final["complete"] is False
    assert final["accuracy"] == pytest.approx(k / len(notes), abs=1e-6)
    assert final["recall"] == pytest.approx(k / len(notes), abs=1e-6)
    assert final["precision"] == 1.0


def test_live_missed_is_uncounted_when_the_note_is_matched_after_all() -> None:
    notes = make_notes([(0, 60), (0.5, 60)])  # two Cs at 0 and 250 ms
    scorer = Scorer(notes)
    # 351 ms: past the first C's window (0 + 350 ms), so it counts as missed live;
    # the press matches the second C, 101 ms late.
    assert scorer.note_on(60, 351.0) == "matched"
    assert scorer.missed == 1
    # The tracker now expects the player 101 ms late: the first C's window is open
    # again and the next press matches it, so it is no longer missed.
    assert scorer.note_on(60, 352.0) == "matched"
    live = scorer.result()
    assert (live["notes_matched"], live["missed"]) == (2, 0)
    check_invariants(scorer.result(final=True))


def test_empty_scorer_result() -> None:
    scorer = Scorer(make_notes([(0, 60), (1, 62)]))
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["accuracy"] == result["precision"] == result["recall"] == result["f1"] == 0.0
    assert result["onset_mean_ms"] is None and result["onset_median_ms"] is None
    assert result["onset_std_ms"] is None and result["tempo_bpm_played"] is None
    assert scorer.last_event_ms is None
    scorer.note_on(60, 5.0)
    assert scorer.result()["tempo_bpm_played"] is None  # one match is not a tempo


def test_perfect_performance_scores_one() -> None:
    chorale = piece()
    notes = chorale.part("Alto").notes
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    feed(scorer, humanize(notes))
    result = scorer.result(final=True)
    check_invariants(result)
    for key in ("accuracy", "precision", "recall", "f1"):
        assert result[key] == 1.0
    assert result["onset_mean_ms"] == 0.0 and result["onset_std_ms"] == 0.0
    assert result["tempo_bpm_played"] == pytest.approx(chorale.bpm)


# ------------------------------------------------------------------- asynchrony


def test_asynchrony_two_players() -> None:
    a = {0: [100.0], 480: [600.0, 610.0], 720: [900.0]}  # a chord at 480: its mean is 605
    b = {0: [110.0], 480: [590.0], 960: [1000.0]}
    out = asynchrony({"a": a, "b": b})
    # Shared ticks 0 and 480 only: |100 - 110| = 10, |605 - 590| = 15.
    assert out == {"asynchrony_ms": 12.5, "pairs": 2, "by_player": {"a": 12.5, "b": 12.5}}


def test_asynchrony_three_players() -> None:
    a = {0: [100.0], 480: [605.0]}
    b = {0: [110.0], 480: [590.0], 960: [1000.0]}
    c = {0: [130.0], 960: [1040.0]}
    out = asynchrony({"a": a, "b": b, "c": c})
    # a-b: 10, 15; a-c: 30; b-c: 20, 40.
    assert out["pairs"] == 5
    assert out["asynchrony_ms"] == pytest.approx(115 / 5)
    assert out["by_player"] == {
        "a": pytest.approx(round(55 / 3, 3)),
        "b": pytest.approx(85 / 4),
        "c": pytest.approx(30.0),
    }


def test_asynchrony_without_shared_ticks() -> None:
    out = asynchrony({"a": {0: [1.0]}, "b": {480: [2.0]}})
    assert out == {"asynchrony_ms": None, "pairs": 0, "by_player": {"a": None, "b": None}}
    assert asynchrony({"solo": {0: [1.0]}})["asynchrony_ms"] is None
    assert asynchrony({}) == {"asynchrony_ms": None, "pairs": 0, "by_player": {}}


def test_asynchrony_of_real_scorers() -> None:
    chorale = piece()
    scorers = {}
    for index, part in enumerate(chorale.parts):
        scorer = Scorer(part.notes, tempo_bpm=chorale.bpm)
        # Each voice plays a constant 10 ms × index late: pairwise asynchrony is exact.
        for note in part.notes:
            scorer.note_on(note.pitch, note.onset_s * 1000 + 10 * index)
        scorers[part.name] = scorer
    onsets = {name: s.matched_onsets_by_tick() for name, s in scorers.items()}
    out = asynchrony(onsets)
    assert out["pairs"] > 30
    assert out["by_player"]["Soprano"] > out["by_player"]["Alto"]
    # Every shared tick of a pair differs by 10 ms × the index distance.
    ticks = {name: set(o) for name, o in onsets.items()}
    names = list(onsets)
    total = sum(
        10 * (j - i) * len(ticks[names[i]] & ticks[names[j]])
        for i in range(4)
        for j in range(i + 1, 4)
    )
    assert out["asynchrony_ms"] == pytest.approx(total / out["pairs"], abs=1e-3)


# ------------------------------------------------------------ property: invariants


@st.composite
def performances(draw):
    """A small part with repeated pitches and chords, and a messy performance of it."""
    n = draw(st.integers(1, 25))
    spec = sorted(
        {
            (draw(st.integers(0, 24)) * 0.5, draw(st.sampled_from([60, 62, 64, 65])))
            for _ in range(n)
        }
    )
    notes = make_notes(spec)
    events: list[tuple[float, int]] = []
    for note in notes:
        action = draw(st.sampled_from(["play", "play", "play", "drop", "wrong", "twice"]))
        t = note.onset_s * 1000 + draw(st.floats(-450, 450, allow_nan=False))
        if action == "play":
            events.append((t, note.pitch))
        elif action == "wrong":
            events.append((t, note.pitch + draw(st.sampled_from([-2, -1, 1, 2, 12]))))
        elif action == "twice":
            events += [(t, note.pitch), (t + draw(st.floats(0, 200)), note.pitch)]
    for _ in range(draw(st.integers(0, 5))):
        events.append((draw(st.floats(-500, 13000)), draw(st.sampled_from([60, 61, 62, 64, 65]))))
    in_time_order = draw(st.booleans())
    if in_time_order:
        events.sort()
    else:
        random.Random(draw(st.integers(0, 1000))).shuffle(events)
    return notes, events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(performances())
def test_counts_always_add_up(performance) -> None:
    notes, events = performance
    scorer = Scorer(notes)
    outcomes = []
    for t, pitch in events:
        outcome = scorer.note_on(pitch, t)
        assert outcome in ("matched", "wrong_pitch", "extra")
        outcomes.append(outcome)
        live = scorer.result()
        assert live["notes_played"] == (live["notes_matched"] + live["wrong_pitch"] + live["extra"])
        assert 0 <= live["missed"] <= live["notes_expected"] - live["notes_matched"]
    result = scorer.result(final=True)
    check_invariants(result)
    assert result["notes_played"] == len(events)
    each_expected_matched_once(scorer, outcomes)
    # Every matched expected note was filled by a note-on of its own pitch.
    played = Counter(events)
    filled = Counter(
        (t, pitch)
        for t, pitch in zip(scorer.played_ms, scorer.pitches, strict=True)
        if t is not None
    )
    assert not filled - played


# ------------------------------------------------- marks: what a score:update colours


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_marks_end_as_the_final_judgements(seed) -> None:
    """Read in small batches while playing, as score:update does, the last mark of each
    expected note is its final judgement (``wrong_pitch`` where a wrong note took it)."""
    chorale = piece()
    notes = chorale.part("Alto").notes
    mistakes = choose_mistakes(notes, dropped=3, wrong=2, seed=seed)
    events = humanize(notes, jitter_ms=40, mistakes=mistakes, seed=seed)
    scorer = Scorer(notes, tempo_bpm=chorale.bpm)
    last: dict[int, str] = {}
    batches = 0
    for k in range(0, len(events), 5):
        feed(scorer, events[k : k + 5])
        marks = scorer.take_marks()
        assert all(0 <= i < len(notes) for i, _ in marks)
        last.update((i, mark) for i, mark in marks)
        batches += bool(marks)
    assert scorer.take_marks() == []  # forgotten once taken
    assert batches > len(events) // 10  # they come along the piece, not at the end
    scorer.note_on(1, events[-1].t_ms + 10_000)  # time passes: the last windows close
    last.update((i, mark) for i, mark in scorer.take_marks())
    details = scorer.result(final=True)["notes"]
    for i, d in enumerate(details):
        expected = "wrong_pitch" if "played_pitch" in d else d["judgement"]
        assert last[i] == expected, (i, d)


def test_marks_are_capped_between_reads() -> None:
    from rooms.scoring import MAX_MARKS

    notes = make_notes([(i * 0.5, 60) for i in range(MAX_MARKS + 20)])
    scorer = Scorer(notes)
    for n in notes:
        scorer.note_on(60, n.onset_s * 1000.0)
    marks = scorer.take_marks()
    assert len(marks) == MAX_MARKS
    assert marks[-1] == [len(notes) - 1, "perfect"]


# ------------------------------------------- robust tempo tracking: ghost notes, pauses


@functools.cache
def rag_both_hands() -> tuple[Note, ...]:
    rag = piece("joplin/maple_leaf_rag")
    return tuple(sorted_notes([n for part in rag.parts for n in part.notes]))


def play_with_ghosts(
    notes: Sequence[Note],
    ghosts: Iterable[tuple[int, int]],
    *,
    warp=lambda ms: ms,
    jitter_ms: float = 10.0,
    seed: int = 0,
) -> list[tuple[float, int]]:
    """Note-ons ``[(t_ms, pitch)]`` of ``notes`` (sorted by onset, pitch) played as
    planned by ``warp`` (grid ms → played ms) with uniform onset jitter, plus one ghost
    note per ``(index, semitones)``: ``semitones`` off note ``index``'s pitch, 5-30 ms
    after it (an octave error of a transcription, a slip next to the right key)."""
    rng = random.Random(seed)
    played = [(warp(n.onset_s * 1000) + rng.uniform(-jitter_ms, jitter_ms), n.pitch) for n in notes]
    for index, semitones in ghosts:
        t, pitch = played[index]
        played.append((t + rng.uniform(5, 30), pitch + semitones))
    return sorted(played)


def score_note_ons(notes: Sequence[Note], note_ons, *, tempo_bpm: float) -> dict:
    scorer = Scorer(notes, tempo_bpm=tempo_bpm)
    for t, pitch in note_ons:
        scorer.note_on(pitch, t)
    result = scorer.result(final=True)
    check_invariants(result)
    return result


# Single ghosts that made the old tracker (least squares over the last four matched
# notes) follow the player to twice the tempo: the whole rag's accuracy fell to 0.31-0.44.
@pytest.mark.parametrize(("index", "semitones"), [(181, -12), (409, -12), (124, 1), (694, -12)])
def test_one_ghost_note_does_not_take_the_tracker_away(index, semitones) -> None:
    notes = rag_both_hands()
    result = score_note_ons(
        notes,
        play_with_ghosts(notes, [(index, semitones)]),
        tempo_bpm=piece("joplin/maple_leaf_rag").bpm,
    )
    assert result["notes_matched"] == len(notes)  # every real note found its own
    assert result["extra"] + result["wrong_pitch"] == 1  # the ghost, and nothing else


@pytest.mark.parametrize("seed", [1, 2, 4, 5, 6])
def test_many_ghost_notes_in_the_rag(seed) -> None:
    notes = rag_both_hands()
    rng = random.Random(seed)
    ghosts = [
        (index, rng.choice([12, -12, 1, -1, 2]))
        for index in sorted(rng.sample(range(5, len(notes) - 5), 12))
    ]
    note_ons = play_with_ghosts(notes, ghosts, seed=seed)
    ghost_times = {
        t for t, _ in Counter(note_ons) - Counter(play_with_ghosts(notes, [], seed=seed))
    }
    assert len(ghost_times) == len(ghosts)
    result = score_note_ons(notes, note_ons, tempo_bpm=piece("joplin/maple_leaf_rag").bpm)
    assert result["accuracy"] >= 0.95
    # No ghost fills an expected note: each is extra or a wrong pitch.
    assert not ghost_times & {n["played_ms"] for n in result["notes"]}


@pytest.mark.parametrize("plan", ["slower_bars", "ritardando"])
def test_ghosts_during_a_real_tempo_change(plan) -> None:
    """Two bars 15 % slower (or a ritardando to 70 %) with octave errors in them: the
    tempo change is followed, the ghosts are not."""
    rag = piece("joplin/maple_leaf_rag")
    notes = rag_both_hands()
    beats = max(n.offset_beat for n in notes)
    beat_ms = notes[-1].onset_s * 1000 / notes[-1].onset_beat  # 120 BPM after the first beat
    warp = tempo_plan(issue_plans(beats)[plan], beat_ms=beat_ms, beats=beats)
    changed = [i for i, n in enumerate(notes) if warp(n.onset_s * 1000) - n.onset_s * 1000 > 50]
    assert len(changed) > 100  # the plan really moves the notes
    ghosts = [(changed[k], 12 if k % 2 else -12) for k in range(3, len(changed), len(changed) // 6)]
    result = score_note_ons(notes, play_with_ghosts(notes, ghosts, warp=warp), tempo_bpm=rag.bpm)
    assert result["accuracy"] >= 0.97
    assert result["extra"] + result["wrong_pitch"] == len(ghosts)
    late = [n["deviation_ms"] for n in result["notes"] if n["played_ms"] is not None]
    assert max(late) > 2 * ScoringSettings().match_window_ms  # the grid alone would fail


@pytest.mark.parametrize("part_name", ["Soprano", "Bass"])
def test_half_speed_from_the_start_with_ghosts(part_name) -> None:
    """A player at half the room tempo all along (the tracker's clamp) is followed,
    through octave errors."""
    chorale = piece("bach/bwv4.8")
    notes = sorted_notes(chorale.part(part_name).notes)
    ghosts = [(i, 12) for i in range(7, len(notes) - 3, 20)]
    result = score_note_ons(
        notes, play_with_ghosts(notes, ghosts, warp=lambda ms: 2 * ms), tempo_bpm=chorale.bpm
    )
    assert result["accuracy"] >= 0.95
    assert result["tempo_bpm_played"] == pytest.approx(chorale.bpm / 2, rel=0.02)


def test_a_ghost_does_not_consume_the_next_note_of_its_pitch() -> None:
    notes = make_notes([(0, 60), (0.5, 62), (1, 64), (1.5, 72), (2, 65)])  # every 250 ms
    scorer = Scorer(notes)
    for pitch, t in ((60, 0.0), (62, 250.0), (64, 500.0)):
        assert scorer.note_on(pitch, t) == "matched"
    assert scorer.note_on(72, 505.0) == "matched"  # an octave error, 245 ms early for the C5
    assert scorer.note_on(72, 750.0) == "matched"  # the real C5 takes its note back
    assert scorer.note_on(65, 1000.0) == "matched"
    result = scorer.result(final=True)
    check_invariants(result)
    assert (result["notes_matched"], result["extra"], scorer.taken_back) == (5, 1, 1)
    assert [n["played_ms"] for n in result["notes"]] == [0.0, 250.0, 500.0, 750.0, 1000.0]


@pytest.mark.parametrize("part_name", ["Soprano", "Alto", "Tenor", "Bass"])
def test_a_fermata_the_file_does_not_mark(part_name) -> None:
    """The player holds a note two beats longer in the middle, then goes on at tempo."""
    chorale = piece()
    notes = sorted_notes(chorale.part(part_name).notes)
    hold_at = notes[len(notes) // 2].onset_s * 1000
    pause = 2 * 60000.0 / chorale.bpm
    result = score_note_ons(
        notes,
        play_with_ghosts(notes, [], warp=lambda ms: ms + (pause if ms > hold_at else 0.0)),
        tempo_bpm=chorale.bpm,
    )
    assert result["notes_matched"] == len(notes)
    assert result["extra"] == result["wrong_pitch"] == 0


def test_tempo_tracker_counts_a_chord_as_one_onset() -> None:
    tracker = TempoTracker(window=4)
    tracker.update(0.0, 0.0)
    tracker.update(500.0, 500.0)
    for k in range(4):  # a four-note chord, its notes 0-30 ms apart
        tracker.update(1000.0, 1000.0 + 10 * k)
    assert tracker.b == pytest.approx(1.0, abs=0.02)  # three onsets, not the chord alone
    tracker.update(1250.0, 1000.0)  # an outlier on its own would bend four notes a lot
    tracker.forget(1250.0, 1000.0)
    assert tracker.b == pytest.approx(1.0, abs=0.02)
