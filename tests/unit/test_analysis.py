"""The piece library's pure parts: analysis (difficulty, key, chords), catalogue
metadata, the recommendation rule and the sight-reading generator.

Real music: corpus pieces from music21 written to MIDI (tests/music.py); the
reference keys are the ones music21 reads from the scores (their MusicXML
``<key>`` with ``<mode>``), not music21's own key finding.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import music21
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.analysis import (
    DIFFICULTY_WEIGHTS,
    analyse,
    chord_of,
    difficulty_from_score,
    difficulty_score,
    find_key,
)
from rooms.catalogue import grade_of, instrument_family, instrument_of, style_period_of
from rooms.generate import KINDS, GenerateError, Request, generate, parse_key
from rooms.notes import Note
from rooms.piece import Part, load_midi
from rooms.recommend import Played, recommend, user_level
from tests.music import chorale_midi, chorale_score


def piece(name: str):
    return load_midi(chorale_midi(name))


def notes_of(*chords: tuple[int, ...], beats: float = 1.0) -> tuple[Note, ...]:
    """One chord per beat (pitches sounding together), at 60 BPM, 480 ticks a beat."""
    out = []
    for i, chord in enumerate(chords):
        for pitch in chord:
            out.append(
                Note(
                    pitch,
                    80,
                    i * beats,
                    (i + 1) * beats,
                    i * beats,
                    (i + 1) * beats,
                    int(i * beats * 480),
                )
            )
    return tuple(out)


def scaled(p, factor: float):
    """The same piece played ``factor`` times faster (times divided, beats kept)."""
    parts = tuple(
        replace(
            part,
            notes=tuple(
                replace(n, onset_s=n.onset_s / factor, offset_s=n.offset_s / factor)
                for n in part.notes
            ),
        )
        for part in p.parts
    )
    return replace(p, parts=parts)


def transposed(p, semitones: int):
    parts = tuple(
        replace(part, notes=tuple(replace(n, pitch=n.pitch + semitones) for n in part.notes))
        for part in p.parts
    )
    return replace(p, parts=parts)


# ------------------------------------------------------------------ difficulty


def test_difficulty_orders_pieces_of_clearly_different_difficulty():
    chorale = analyse(piece("bach/bwv66.6"))  # four voices, each in quarters at 96 BPM
    prelude = analyse(piece("bach/bwv846"))  # WTC I prelude: broken chords in 16ths
    rag = analyse(piece("joplin/maple_leaf_rag"))  # dense, wide, chords in both hands
    assert chorale.difficulty <= 3
    assert rag.difficulty >= 8
    assert chorale.difficulty < prelude.difficulty < rag.difficulty
    # the rag's hands are the busiest, widest and thickest of the three
    hardest = max(rag.parts, key=lambda f: f.score)
    assert hardest.density_nps > 8 and hardest.polyphony > 2 and hardest.hand_span_semitones == 12
    assert all(f.polyphony == 1.0 and f.hand_span_semitones == 0 for f in chorale.parts)


def test_faster_is_never_easier_and_transposing_changes_nothing():
    for name in ("bach/bwv66.6", "bach/bwv846"):
        p = piece(name)
        base = analyse(p)
        assert analyse(scaled(p, 1.5)).score > base.score
        assert analyse(scaled(p, 2.0)).difficulty >= analyse(scaled(p, 1.5)).difficulty
        assert analyse(scaled(p, 0.5)).difficulty <= base.difficulty
        assert analyse(transposed(p, 3)).score == pytest.approx(base.score)


def test_doubling_a_line_in_octaves_is_harder():
    p = piece("bach/bwv66.6")
    soprano = p.part("Soprano")
    doubled = Part(
        "Soprano",
        tuple(
            sorted(
                soprano.notes + tuple(replace(n, pitch=n.pitch - 12) for n in soprano.notes),
                key=lambda n: (n.onset_tick, n.pitch),
            )
        ),
    )
    single, both = analyse(replace(p, parts=(soprano,))), analyse(replace(p, parts=(doubled,)))
    assert both.score > single.score
    assert both.parts[0].polyphony == 2.0 and both.parts[0].hand_span_semitones == 12


FEATURES = list(DIFFICULTY_WEIGHTS)


@given(
    values=st.fixed_dictionaries({f: st.floats(0, 300) for f in FEATURES}),
    feature=st.sampled_from(FEATURES),
    more=st.floats(0, 100),
)
def test_the_score_never_falls_when_a_feature_grows(values, feature, more):
    bigger = dict(values, **{feature: values[feature] + more})
    assert difficulty_score(bigger) >= difficulty_score(values)
    assert 0.0 <= difficulty_score(values) <= 1.0
    assert 1 <= difficulty_from_score(difficulty_score(values)) <= 10


def test_weights_sum_to_one_and_the_ends_are_1_and_10():
    assert sum(w for _, _, w in DIFFICULTY_WEIGHTS.values()) == pytest.approx(1.0)
    lows = {f: low for f, (low, _, _) in DIFFICULTY_WEIGHTS.items()}
    highs = {f: high for f, (_, high, _) in DIFFICULTY_WEIGHTS.items()}
    assert difficulty_from_score(difficulty_score(lows)) == 1
    assert difficulty_from_score(difficulty_score(highs)) == 10


# ------------------------------------------------------------------------- key


def _chorales(count: int) -> list[str]:
    """The first ``count`` Bach chorales of the corpus in name order (no choosing)."""
    paths = sorted(
        str(p).replace("\\", "/").split("corpus/")[-1].rsplit(".", 1)[0]
        for p in music21.corpus.getComposer("bach")
        if re.search(r"bach/bwv\d+\.\d+\.mxl$", str(p).replace("\\", "/"))
    )
    return paths[:count]


def test_key_agrees_with_the_keys_written_in_most_chorales():
    agree, checked = 0, []
    for name in _chorales(12):
        written = chorale_score(name).flatten().getElementsByClass(music21.key.Key)[0]
        found = analyse(piece(name)).key
        checked.append((name, str(written), found.name))
        agree += (written.tonic.pitchClass, written.mode) == (found.tonic, found.mode)
    assert agree >= 9, checked  # 10 of these 12 at the time of writing


def test_key_of_bwv66_6_and_of_scales():
    key = analyse(piece("bach/bwv66.6")).key
    assert key.name == "F# minor" and 0.5 < key.correlation <= 1
    c_major = notes_of(*[(p,) for p in (60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)])
    assert find_key(c_major).name == "C major"
    a_minor = notes_of(*[(p,) for p in (57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57)])
    assert find_key(a_minor).name == "A minor"
    assert find_key(notes_of((60,), (72,))) is None  # one pitch class: no key


# ---------------------------------------------------------------------- chords


@pytest.mark.parametrize(
    ("pitches", "label"),
    [
        ((60, 64, 67), "C"),
        ((57, 60, 64), "Am"),
        ((59, 62, 65), "Bdim"),
        ((60, 64, 68), "Caug"),
        ((55, 59, 62, 65), "G7"),
        ((66, 69, 73), "F#m"),
        ((64, 67, 72), "C"),  # first inversion
        ((67,), "G"),  # a lone pitch: its major triad
    ],
)
def test_chord_templates(pitches, label):
    weights = [0.0] * 12
    for p in pitches:
        weights[p % 12] += 1
    assert chord_of(weights) == label


def test_chords_per_beat():
    notes = notes_of((48, 64, 67), (53, 65, 69), (55, 65, 71), (48, 64, 72))
    assert analyse(Part_piece(notes)).chords == ("C", "F", "G7", "C")
    # a gap of silence is "N"; a half-beat passing tone does not change the chord
    gap = notes_of((60, 64, 67), (), (57, 60, 64))
    assert analyse(Part_piece(gap)).chords == ("C", "N", "Am")


def test_chorale_ends_on_its_tonic():
    chords = analyse(piece("bach/bwv66.6")).chords
    assert chords[-1] in ("F#", "F#m")  # a Picardy third or not
    assert len(chords) >= 30


def Part_piece(notes):  # noqa: N802 - reads like a constructor
    class _Piece:
        parts = (Part("one", notes),)

    return _Piece()


# ------------------------------------------------------------------- catalogue


def test_catalogue_metadata():
    assert [grade_of(d) for d in range(1, 11)] == [1, 2, 3, 4, 4, 5, 6, 7, 8, 8]
    assert style_period_of("J. S. Bach") == "baroque"
    assert style_period_of("Scott Joplin") == "romantic"
    assert style_period_of("Wolfgang Amadeus Mozart") == "classical"
    assert style_period_of("Nobody") is None and style_period_of(None) is None
    assert instrument_family(None) == "piano"
    assert instrument_family(40) == "strings" and instrument_family(73) == "pipe"
    assert instrument_of(piece("bach/bwv66.6").parts) == "piano"  # music21 writes program 0
    with pytest.raises(ValueError):
        instrument_family(128)


# -------------------------------------------------------------- recommendation

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def played(pid, difficulty, best, days_ago):
    return Played(pid, difficulty, best, NOW - timedelta(days=days_ago))


def test_level_from_history():
    assert user_level([]) == 2
    assert user_level([played("a", 3, 85, 1), played("b", 6, 60, 1), played("c", 5, 80, 1)]) == 5
    assert user_level([played("a", 4, 50, 1), played("b", 6, 40, 1)]) == 3
    assert user_level([played("a", 4, None, 1)]) == 2  # only unscored (manual) logs


def test_recommendation_rule():
    library = [(f"d{d}", d) for d in range(1, 11)] + [("d4-new", 4), ("d5-recent", 5)]
    history = [
        played("d4", 4, 88, 30),  # sets level 4; not recent, not mastered: recommended
        played("d3", 3, 97, 20),  # mastered: left out
        played("d5-recent", 5, 70, 2),  # practised two days ago: left out
        played("d9", 9, 20, 40),  # far above the level
    ]
    chosen = recommend(library, history, now=NOW, limit=10)
    assert [c.piece_id for c in chosen] == ["d4-new", "d4", "d5", "d6", "d2"]
    assert {c.level for c in chosen} == {4}
    assert chosen[1].best_accuracy == 88 and chosen[1].last_practised == NOW - timedelta(days=30)
    assert [c.piece_id for c in recommend(library, history, now=NOW, limit=2)] == ["d4-new", "d4"]
    # eight days later the recent piece is back
    later = recommend(library, history, now=NOW + timedelta(days=6), limit=10)
    assert "d5-recent" in [c.piece_id for c in later]


# ------------------------------------------------------------------- generator


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("parts", [1, 2])
def test_generated_difficulty_is_near_the_request(kind, parts):
    for difficulty in range(1, 11):
        made = generate(Request(kind, difficulty, "G major", parts, 8, seed=difficulty))
        got = analyse(made.piece).difficulty
        assert abs(got - difficulty) <= 1, (kind, parts, difficulty, got, made.tempo_bpm)
        assert [p.name for p in made.piece.parts] == (
            ["Solo"] if parts == 1 else ["Primo", "Secondo"]
        )


def test_same_seed_same_notes_other_seed_other_notes():
    request = Request("phrase", 5, "D minor", 2, 8, seed=42)
    first, again = generate(request), generate(request)
    assert first.midi == again.midi
    notes = [[(n.pitch, n.onset_tick) for n in p.notes] for p in first.piece.parts]
    other = generate(replace(request, seed=43)).piece
    assert notes != [[(n.pitch, n.onset_tick) for n in p.notes] for p in other.parts]


@pytest.mark.parametrize("key", ["C major", "G major", "Bb major", "E minor", "F# minor"])
def test_generated_scales_are_in_the_requested_key(key):
    made = generate(Request("scale", 3, key, 1, 8, seed=0))
    found = analyse(made.piece).key
    assert (found.tonic, found.mode) == parse_key(key)


def test_generated_material_ends_on_the_tonic_and_fills_its_measures():
    made = generate(Request("phrase", 4, "A major", 1, 6, seed=7))
    last = max(made.piece.parts[0].notes, key=lambda n: n.onset_tick)
    assert last.pitch % 12 == 9
    assert last.offset_beat == pytest.approx(24.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "etude"},
        {"difficulty": 0},
        {"difficulty": 11},
        {"parts": 3},
        {"measures": 0},
        {"key": "H major"},
        {"key": "C dorian"},
    ],
)
def test_bad_requests(bad):
    with pytest.raises(GenerateError):
        Request(**bad)
