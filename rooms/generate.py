"""Sight-reading material made to order: scales, arpeggios and random phrases.

:func:`generate` writes a Standard MIDI File (type 1, 480 ticks per quarter,
4/4) for a :class:`Request` — kind, difficulty 1–10, key, one part
(``"Solo"``) or a two-part duet (``"Primo"`` above, ``"Secondo"`` below) —
and returns it with the loaded :class:`rooms.piece.Piece`. Everything random
comes from ``random.Random(seed)``, so the same request gives byte-identical
MIDI.

How difficulty is reached: the difficulty sets the material (shorter note
values, more octaves, wider leaps, chromatic notes, added harmony notes in
the upper part from 6 on, a busier accompaniment), then the tempo is chosen
from 40–200 BPM (steps of 4) so that :func:`rooms.analysis.analyse` of the
result lands as close as possible to the requested difficulty (ties: the
tempo nearest to ``60 + 8 × (difficulty − 1)``).

Material: scales are the major or harmonic minor scale up and down over 1–3
octaves; arpeggios the tonic triad up and down; phrases a random walk on the
scale (leaps growing with difficulty) over the progression I–IV–V–I, ending
on the tonic. The secondo doubles scales and arpeggios a tenth below and
accompanies phrases with the progression's roots (whole notes at 1–3, half
notes root–fifth at 4–5, quarter-note broken chords at 6–7, eighth-note
Alberti bass from 8).
"""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass

import mido

from rooms.analysis import analyse
from rooms.errors import TuttiError
from rooms.notes import Note
from rooms.piece import Piece, load_midi

KINDS = ("scale", "arpeggio", "phrase")
TICKS = 480
VELOCITY = 80
MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
PROGRESSION = (0, 3, 4, 0)  # scale degrees of I, IV, V, I
TEMPI = tuple(range(40, 201, 4))

_TONICS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
KEY_PATTERN = r"^([A-Ga-g])([#b]?)\s+(major|minor)$"


class GenerateError(TuttiError, ValueError):
    """A request the generator cannot satisfy (code ``invalid_value``, HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_value", message)


def parse_key(key: str) -> tuple[int, str]:
    """``"G major"``, ``"F# minor"``, ``"Bb major"`` → ``(tonic pitch class, mode)``.

    Raises :class:`GenerateError` for anything else.
    """
    match = re.match(KEY_PATTERN, key.strip())
    if not match:
        raise GenerateError(f"key must look like 'C major' or 'F# minor', got {key!r}")
    letter, accidental, mode = match.groups()
    tonic = _TONICS[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    return tonic % 12, mode


@dataclass(frozen=True, slots=True)
class Request:
    """What to generate: ``kind`` one of :data:`KINDS`, ``difficulty`` 1–10,
    ``key`` like ``"D minor"``, ``parts`` 1 or 2, ``measures`` of 4/4 (1–64),
    ``seed`` any integer."""

    kind: str = "phrase"
    difficulty: int = 3
    key: str = "C major"
    parts: int = 1
    measures: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GenerateError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 1 <= self.difficulty <= 10:
            raise GenerateError(f"difficulty must be 1-10, got {self.difficulty}")
        if self.parts not in (1, 2):
            raise GenerateError(f"parts must be 1 or 2, got {self.parts}")
        if not 1 <= self.measures <= 64:
            raise GenerateError(f"measures must be 1-64, got {self.measures}")
        parse_key(self.key)

    @property
    def title(self) -> str:
        scoring = "duet" if self.parts == 2 else "solo"
        return (
            f"Sight-reading {self.kind} in {self.key}, {scoring} "
            f"(difficulty {self.difficulty}, seed {self.seed})"
        )


@dataclass(frozen=True, slots=True)
class Generated:
    """The result: the MIDI bytes, the loaded piece, the tempo chosen (BPM)."""

    request: Request
    midi: bytes
    piece: Piece
    tempo_bpm: int


# (pitch, onset beat, length in beats)
_Line = list[tuple[int, float, float]]


def generate(request: Request) -> Generated:
    """Generate the piece for ``request`` (see the module for the method)."""
    tonic, mode = parse_key(request.key)
    rng = random.Random(request.seed)
    scale = MAJOR if mode == "major" else HARMONIC_MINOR
    low = 60 + tonic - (12 if tonic > 6 else 0)  # the tonic nearest middle C
    total = 4 * request.measures
    d = request.difficulty
    maker = {"scale": _scale, "arpeggio": _arpeggio, "phrase": _phrase}[request.kind]
    upper_degrees = maker(rng, d, total)
    upper = _realise(upper_degrees, scale, low)
    upper = _add_harmony(rng, d, upper_degrees, scale, low) if d >= 6 else upper
    lines = [upper]
    if request.parts == 2:
        if request.kind == "phrase":
            lines.append(_accompaniment(d, scale, low - 24, request.measures))
        else:  # a tenth below: two degrees and an octave down
            lines.append(
                _realise([(deg - 2, on, ln) for deg, on, ln in upper_degrees], scale, low - 12)
            )
    names = ["Solo"] if request.parts == 1 else ["Primo", "Secondo"]
    tempo = _choose_tempo(lines, names, d)
    midi = _write_midi(lines, names, tempo, request.title)
    return Generated(request, midi, load_midi(midi, title=request.title), tempo)


# -------------------------------------------------------------------- material


def _unit(d: int) -> float:
    """The main note value in beats at difficulty ``d``."""
    return 1.0 if d <= 2 else 0.5 if d <= 5 else 0.25


def _octaves(d: int) -> int:
    return 1 if d <= 2 else 2 if d <= 6 else 3


def _fill(pattern: list[int], unit: float, total: float) -> list[tuple[int, float, float]]:
    """Repeat ``pattern`` (degrees) in notes of ``unit`` beats; end on a long tonic."""
    out: list[tuple[int, float, float]] = []
    t, i = 0.0, 0
    while t + unit <= total - 1:
        out.append((pattern[i % len(pattern)], t, unit))
        t += unit
        i += 1
    out.append((0, t, total - t))
    return out


def _scale(rng: random.Random, d: int, total: float) -> list[tuple[int, float, float]]:
    top = 7 * _octaves(d)
    up = list(range(top))
    return _fill(up + [top - i for i in range(top)], _unit(d), total)


def _arpeggio(rng: random.Random, d: int, total: float) -> list[tuple[int, float, float]]:
    octaves = _octaves(d)
    up = [7 * o + deg for o in range(octaves) for deg in (0, 2, 4)]
    return _fill(up + [7 * octaves] + up[:0:-1], _unit(d), total)


_RHYTHMS = {  # beat patterns (lengths filling one beat), by the top difficulty they suit
    2: [[1.0]],
    4: [[1.0], [0.5, 0.5]],
    6: [[0.5, 0.5], [1.0], [0.75, 0.25]],
    10: [[0.25] * 4, [0.5, 0.25, 0.25], [0.25, 0.25, 0.5], [0.5, 0.5]],
}


def _phrase(rng: random.Random, d: int, total: float) -> list[tuple[int, float, float]]:
    rhythms = next(r for top, r in _RHYTHMS.items() if d <= top)
    leap = 2 if d <= 2 else 4 if d <= 5 else 7
    top = 7 * _octaves(d)
    out: list[tuple[int, float, float]] = []
    degree = 0
    beat = 0
    while beat < total - 1:
        t = float(beat)
        for length in rng.choice(rhythms):
            degree = min(max(degree + rng.randint(-leap, leap), 0), top)
            out.append((degree, t, length))
            t += length
        beat += 1
    out.append((0, float(beat), total - beat))
    if d >= 7:  # chromatic neighbours: a fraction of notes a semitone off the scale
        out = [
            (deg + (0.5 if rng.random() < 0.1 * (d - 6) and i < len(out) - 1 else 0), on, ln)
            for i, (deg, on, ln) in enumerate(out)
        ]
    return out


def _pitch(degree: float, scale: tuple[int, ...], low: int) -> int:
    whole = int(degree // 1)
    octave, step = divmod(whole, 7)
    return low + 12 * octave + scale[step] + (1 if degree != whole else 0)


def _realise(degrees, scale, low) -> _Line:
    return [(_pitch(deg, scale, low), on, ln) for deg, on, ln in degrees]


def _add_harmony(rng, d, degrees, scale, low) -> _Line:
    """The upper line plus a third or sixth below some notes (an octave on downbeats at 9–10)."""
    chance = min(1.0, 0.2 * (d - 5))
    out: _Line = []
    for deg, on, ln in degrees:
        top = _pitch(deg, scale, low)
        out.append((top, on, ln))
        if rng.random() < chance:
            if d >= 9 and on % 4 == 0:
                out.append((top - 12, on, ln))
            else:
                out.append((_pitch(int(deg) - rng.choice((2, 5)), scale, low), on, ln))
    return out


def _accompaniment(d: int, scale, low: int, measures: int) -> _Line:
    out: _Line = []
    for m in range(measures):
        root = PROGRESSION[m % 4] if m < measures - 1 else 0
        chord = [_pitch(root + i, scale, low) for i in (0, 2, 4)]
        start = 4.0 * m
        if d <= 3:
            out.append((chord[0], start, 4.0))
        elif d <= 5:
            out += [(chord[0], start, 2.0), (chord[2], start + 2, 2.0)]
        else:
            unit = 1.0 if d <= 7 else 0.5
            pattern = [chord[0], chord[2], chord[1], chord[2]]  # Alberti
            out += [(pattern[i % 4], start + i * unit, unit) for i in range(int(4 / unit))]
    return out


# ------------------------------------------------------------- tempo and MIDI


class _Part:
    __slots__ = ("name", "notes")

    def __init__(self, name: str, notes: tuple[Note, ...]) -> None:
        self.name, self.notes = name, notes


class _Sketch:
    """Just enough of a Piece for :func:`analyse`."""

    __slots__ = ("parts",)

    def __init__(self, lines: list[_Line], names: list[str], bpm: int) -> None:
        spb = 60.0 / bpm
        self.parts = [
            _Part(
                name,
                tuple(
                    Note(p, VELOCITY, on * spb, (on + ln) * spb, on, on + ln, round(on * TICKS))
                    for p, on, ln in sorted(line, key=lambda n: (n[1], n[0]))
                ),
            )
            for line, name in zip(lines, names, strict=True)
        ]


def _choose_tempo(lines: list[_Line], names: list[str], d: int) -> int:
    nominal = 60 + 8 * (d - 1)
    return min(
        TEMPI,
        key=lambda bpm: (
            abs(analyse(_Sketch(lines, names, bpm), chords=False).difficulty - d),
            abs(bpm - nominal),
        ),
    )


def _write_midi(lines: list[_Line], names: list[str], bpm: int, title: str) -> bytes:
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name=title, time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
        ]
    )
    midi.tracks.append(conductor)
    for channel, (line, name) in enumerate(zip(lines, names, strict=True)):
        events = []
        for pitch, on, ln in line:
            events.append((round(on * TICKS), 1, pitch))
            events.append((round((on + ln) * TICKS), 0, pitch))  # offs sort before ons
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        track.append(mido.Message("program_change", channel=channel, program=0, time=0))
        now = 0
        for tick, is_on, pitch in sorted(events):
            track.append(
                mido.Message(
                    "note_on" if is_on else "note_off",
                    channel=channel,
                    note=pitch,
                    velocity=VELOCITY if is_on else 0,
                    time=tick - now,
                )
            )
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
