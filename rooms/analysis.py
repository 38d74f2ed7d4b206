"""What a piece asks of its players, computed from its notes alone.

:func:`analyse` turns a :class:`rooms.piece.Piece` into an :class:`Analysis`:
a difficulty 1–10, the key, and a chord label per beat. Pure Python, no
music21 at runtime.

Units: *beats* are quarter notes (as in :mod:`rooms.piece`), seconds come
from the file's tempo map, pitches are MIDI note numbers, pitch classes 0–11
with C = 0.

Difficulty
----------
Five features are measured per part (the hardest part sets the piece):

==================  ======================================================  ===========  ======
feature             measured as                                             0 → 1 ramp   weight
==================  ======================================================  ===========  ======
note density        notes per second between the part's first onset and     1 → 10 /s    0.40
                    last offset
range               highest − lowest pitch, semitones                        12 → 48      0.15
polyphony           mean notes per attack (notes sharing an onset tick)      1 → 3        0.15
tempo               mean quarter-note tempo of the piece, BPM                60 → 180     0.10
hand span           widest interval struck at once, semitones                0 → 12       0.20
==================  ======================================================  ===========  ======

Each feature is mapped linearly onto 0–1 between the ends of its ramp
(clamped), then ``score = Σ weight × feature`` (0–1) and
``difficulty = 1 + round(9 × score)``. Every weight is positive and every ramp
non-decreasing, so more notes per second, a wider range, thicker chords, a
faster tempo or a wider stretch never make a piece easier; transposing a piece
leaves it unchanged. Density carries the most weight because, for sight
reading, notes per second is the best single predictor of how hard a passage
is (it already includes the tempo; the tempo term adds the pulse one has to
keep). A heuristic for sorting a catalogue, not a grade from an examiner.

Key
---
The Krumhansl–Schmuckler key-finding algorithm (Krumhansl 1990, *Cognitive
Foundations of Musical Pitch*, ch. 4) with the Krumhansl & Kessler (1982)
probe-tone profiles: the duration-weighted pitch-class distribution of all
parts (beats per pitch class) is correlated (Pearson) with the 24 rotations of
the major and minor profile; the best correlation names the key.

Chords
------
One label per quarter-note beat, by template matching after Pardo &
Birmingham (2002, "Algorithms for chordal analysis", *Computer Music Journal*
26(2)): each note sounding in the beat weighs the fraction of the beat it
sounds; for every root (12) and template (major ``{0,4,7}``, minor
``{0,3,7}``, diminished ``{0,3,6}``, augmented ``{0,4,8}``, dominant seventh
``{0,4,7,10}``) the score is ``P − (N + M)``: ``P`` the weight of notes in the
template, ``N`` the weight of notes outside it, ``M`` the number of template
tones that do not sound. The best score wins; ties go to the template whose
root weighs most, then to the order above (so a lone pitch is labelled as its
major triad). Labels: ``"C"``, ``"Cm"``, ``"Cdim"``, ``"Caug"``, ``"C7"``
(sharp names, ``"F#m"``), ``"N"`` for a beat where nothing sounds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rooms.notes import Note

ANALYSIS_VERSION = 1
"""Bumped when the method changes, so stored analyses are recomputed."""

# -------------------------------------------------------------------- difficulty

# feature: (ramp start, ramp end, weight)
DIFFICULTY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "density_nps": (1.0, 10.0, 0.40),
    "range_semitones": (12.0, 48.0, 0.15),
    "polyphony": (1.0, 3.0, 0.15),
    "tempo_bpm": (60.0, 180.0, 0.10),
    "hand_span_semitones": (0.0, 12.0, 0.20),
}

# ------------------------------------------------------------------------ keys

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Spelling of each pitch class in key names (the usual key-signature spellings)."""
CHORD_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

# ---------------------------------------------------------------------- chords

CHORD_TEMPLATES: tuple[tuple[str, frozenset[int]], ...] = (
    ("", frozenset({0, 4, 7})),  # major
    ("m", frozenset({0, 3, 7})),  # minor
    ("7", frozenset({0, 4, 7, 10})),  # dominant seventh
    ("dim", frozenset({0, 3, 6})),
    ("aug", frozenset({0, 4, 8})),
)
NO_CHORD = "N"
MAX_CHORD_BEATS = 4096
"""Chord labels are kept for at most this many beats (a long piece is cut there)."""


@dataclass(frozen=True, slots=True)
class Key:
    """A key: ``tonic`` pitch class 0–11, ``mode`` ``"major"``/``"minor"``,
    ``correlation`` the Pearson r of the winning profile (−1…1)."""

    tonic: int
    mode: str
    correlation: float

    @property
    def name(self) -> str:
        """``"G major"``, ``"F# minor"``…"""
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


@dataclass(frozen=True, slots=True)
class PartFeatures:
    """The difficulty features of one part (see the module table) and its score."""

    name: str
    density_nps: float
    range_semitones: int
    polyphony: float
    hand_span_semitones: int
    score: float
    difficulty: int


@dataclass(frozen=True, slots=True)
class Analysis:
    """The analysis of a piece.

    ``difficulty`` 1–10 and ``score`` 0–1 are those of the hardest part;
    ``tempo_bpm`` is the mean quarter-note tempo; ``chords`` one label per
    quarter-note beat from beat 0.
    """

    difficulty: int
    score: float
    tempo_bpm: float
    key: Key | None
    parts: tuple[PartFeatures, ...]
    chords: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"version", "difficulty", "score", "tempo_bpm",
        "key": {"name", "tonic", "mode", "correlation"} | None, "parts": [...],
        "chords": [str, ...], "weights": {feature: [start, end, weight]}}``."""
        return {
            "version": ANALYSIS_VERSION,
            "difficulty": self.difficulty,
            "score": round(self.score, 4),
            "tempo_bpm": round(self.tempo_bpm, 3),
            "key": None
            if self.key is None
            else {
                "name": self.key.name,
                "tonic": self.key.tonic,
                "mode": self.key.mode,
                "correlation": round(self.key.correlation, 4),
            },
            "parts": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(p).items()}
                for p in self.parts
            ],
            "chords": list(self.chords),
            "weights": {k: list(v) for k, v in DIFFICULTY_WEIGHTS.items()},
        }


def analyse(piece: Any, *, chords: bool = True) -> Analysis:
    """Analyse a :class:`rooms.piece.Piece` (anything with ``parts`` of ``notes``).

    ``chords=False`` skips the chord labels (``()``), for callers that only
    want the difficulty. Raises ``ValueError`` when no part has notes.
    """
    parts = [p for p in piece.parts if p.notes]
    if not parts:
        raise ValueError("the piece has no notes to analyse")
    all_notes = [n for p in parts for n in p.notes]
    tempo = mean_tempo_bpm(all_notes)
    features = tuple(part_features(p.name, p.notes, tempo) for p in parts)
    hardest = max(features, key=lambda f: f.score)
    return Analysis(
        difficulty=hardest.difficulty,
        score=hardest.score,
        tempo_bpm=tempo,
        key=find_key(all_notes),
        parts=features,
        chords=chord_labels(all_notes) if chords else (),
    )


# -------------------------------------------------------------------- features


def mean_tempo_bpm(notes: Sequence[Note]) -> float:
    """Quarter notes per minute over the span of ``notes`` (beats / seconds × 60)."""
    end = max(notes, key=lambda n: n.offset_s)
    if end.offset_s <= 0:
        return 120.0
    return 60.0 * end.offset_beat / end.offset_s


def part_features(name: str, notes: Sequence[Note], tempo_bpm: float) -> PartFeatures:
    """The features and difficulty of one part's ``notes`` at ``tempo_bpm``."""
    start = min(n.onset_s for n in notes)
    end = max(n.offset_s for n in notes)
    # A very short fragment is measured over at least one second, not blown up.
    density = len(notes) / max(end - start, 1.0)
    pitches = [n.pitch for n in notes]
    attacks: dict[int, list[int]] = defaultdict(list)
    for n in notes:
        attacks[n.onset_tick].append(n.pitch)
    polyphony = len(notes) / len(attacks)
    span = max(max(group) - min(group) for group in attacks.values())
    values = {
        "density_nps": density,
        "range_semitones": max(pitches) - min(pitches),
        "polyphony": polyphony,
        "tempo_bpm": tempo_bpm,
        "hand_span_semitones": span,
    }
    score = difficulty_score(values)
    return PartFeatures(
        name=name,
        density_nps=density,
        range_semitones=values["range_semitones"],
        polyphony=polyphony,
        hand_span_semitones=span,
        score=score,
        difficulty=difficulty_from_score(score),
    )


def difficulty_score(values: dict[str, float]) -> float:
    """``Σ weight × ramp(feature)`` over :data:`DIFFICULTY_WEIGHTS`, 0–1."""
    total = 0.0
    for feature, (low, high, weight) in DIFFICULTY_WEIGHTS.items():
        total += weight * min(max((values[feature] - low) / (high - low), 0.0), 1.0)
    return total


def difficulty_from_score(score: float) -> int:
    """``1 + round(9 × score)``, clamped to 1–10."""
    return max(1, min(10, 1 + round(9 * score)))


# ------------------------------------------------------------------------- key


def pitch_class_durations(notes: Sequence[Note]) -> list[float]:
    """Beats sounded by each pitch class 0–11 (a zero-length note counts 1/16 beat)."""
    weights = [0.0] * 12
    for n in notes:
        weights[n.pitch % 12] += max(n.offset_beat - n.onset_beat, 1 / 16)
    return weights


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    vy = math.sqrt(sum((y - my) ** 2 for y in ys))
    return cov / (vx * vy) if vx and vy else 0.0


def key_correlations(distribution: Sequence[float]) -> list[Key]:
    """All 24 keys with their correlation to ``distribution``, best first."""
    keys = []
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            rotated = [profile[(pc - tonic) % 12] for pc in range(12)]
            keys.append(Key(tonic, mode, _pearson(distribution, rotated)))
    return sorted(keys, key=lambda k: (-k.correlation, k.mode != "major", k.tonic))


def find_key(notes: Sequence[Note]) -> Key | None:
    """The Krumhansl–Schmuckler key of ``notes``; ``None`` if they use one pitch class
    or none (no correlation is defined)."""
    distribution = pitch_class_durations(notes)
    if sum(1 for w in distribution if w > 0) < 2:
        return None
    return key_correlations(distribution)[0]


# ---------------------------------------------------------------------- chords


def chord_of(weights: Sequence[float]) -> str:
    """The label of one pitch-class weight vector (12 floats ≥ 0), see the module."""
    total = sum(weights)
    if total <= 0:
        return NO_CHORD
    best: tuple[float, float, int] | None = None
    label = NO_CHORD
    for order, (suffix, template) in enumerate(CHORD_TEMPLATES):
        for root in range(12):
            members = {(root + i) % 12 for i in template}
            positive = sum(weights[pc] for pc in members)
            misses = sum(1 for pc in members if weights[pc] <= 0)
            score = positive - (total - positive) - misses
            rank = (score, weights[root], -order)
            if best is None or rank > best:
                best, label = rank, CHORD_NAMES[root] + suffix
    return label


def chord_labels(notes: Sequence[Note], max_beats: int = MAX_CHORD_BEATS) -> tuple[str, ...]:
    """One chord label per quarter-note beat ``[b, b + 1)`` from beat 0 to the last offset."""
    if not notes:
        return ()
    n_beats = min(max_beats, math.ceil(max(n.offset_beat for n in notes) - 1e-9))
    beats = [[0.0] * 12 for _ in range(max(n_beats, 0))]
    for n in notes:
        first = int(math.floor(n.onset_beat))
        last = max(first, math.ceil(n.offset_beat) - 1)
        for b in range(first, min(last, n_beats - 1) + 1):
            overlap = min(n.offset_beat, b + 1) - max(n.onset_beat, b)
            beats[b][n.pitch % 12] += max(overlap, 1 / 16)
    return tuple(chord_of(w) for w in beats)
