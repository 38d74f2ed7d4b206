"""Reference pieces loaded from Standard MIDI Files (type 0 and type 1).

:func:`load_midi` turns the bytes of a ``.mid`` file into a :class:`Piece`: its
tempo map, time signatures and one :class:`Part` per instrument, each a sorted
tuple of :class:`rooms.notes.Note`.

Units used throughout: *ticks* are the file's integer time unit
(``ticks_per_beat`` per quarter note), *beats* are quarter notes, *seconds* are
measured from tick 0 through the file's tempo map, tempo is given both as
microseconds per quarter note (``us_per_beat``, what MIDI stores) and as BPM
(quarter notes per minute).

How notes are read: a note starts at a ``note_on`` with velocity > 0 and ends at
the next ``note_off`` (or ``note_on`` with velocity 0) for the same channel and
pitch in the same track; overlapping notes of the same pitch are closed first in,
first out. A note still open at the end of its track ends at the track's last
tick. Zero-length notes (closed at the tick they start) are kept, with
``offset == onset``. A ``note_off`` with no open note is ignored.

Parts: in a type 1 file each track with notes is one part, named by its
``track_name`` (``"Track N"`` if it has none, N being the 1-based track index;
repeated names get ``" (2)"``, ``" (3)"``…). In a type 0 file each MIDI channel
with notes is one part, in channel order, named ``"Channel N"`` (N = channel +
1), except that a file with a single channel names its only part after the
track's ``track_name`` when the track has exactly one distinct name. Tempo
changes and time signatures are read from every track. Type 2 files are
rejected.

Every failure is a :class:`PieceError` with a machine-readable ``code``; no
``mido``/``struct``/``EOFError`` escapes :func:`load_midi`.
"""

from __future__ import annotations

import io
import os
import struct
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise

import mido

from rooms.errors import TuttiError
from rooms.notes import Note

DEFAULT_US_PER_BEAT = 500_000  # 120 BPM, the MIDI default
DEFAULT_TIME_SIGNATURE = (4, 4)


# --------------------------------------------------------------------- errors


class PieceError(TuttiError, ValueError):
    """A MIDI file or a request about a piece cannot be handled.

    ``code`` is a stable machine-readable string (a subclass's, else
    ``invalid_piece``); ``str(error)`` is a message for people that names the problem.
    """

    code = "invalid_piece"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(code or type(self).code, message)


class NotMidiError(PieceError):
    """The data is not a Standard MIDI File (empty, or no ``MThd`` header)."""

    code = "not_midi"


class TruncatedMidiError(PieceError):
    """The MIDI file ends before the data its headers announce."""

    code = "truncated_midi"


class CorruptMidiError(PieceError):
    """The MIDI file has a valid header but its track data cannot be decoded."""

    code = "corrupt_midi"


class UnsupportedMidiError(PieceError):
    """A valid MIDI file this module does not handle (type 2, SMPTE timing).

    ``code`` is ``"unsupported_midi_type"`` or ``"unsupported_time_division"``.
    """

    code = "unsupported_midi_type"


class NoNotesError(PieceError):
    """The MIDI file contains no notes."""

    code = "no_notes"


class UnknownPartError(PieceError, KeyError):
    """No part has the requested name; ``available`` lists the part names."""

    code = "unknown_part"

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = tuple(available)
        listed = ", ".join(repr(n) for n in self.available) or "none"
        super().__init__(f"no part named {name!r}; available parts: {listed}")


class SplitError(PieceError):
    """:meth:`Piece.split_hands` cannot split as asked."""

    code = "invalid_split"


# ---------------------------------------------------------------- tempo map


@dataclass(frozen=True, slots=True)
class TempoChange:
    """Tempo from ``tick`` on: ``us_per_beat`` µs per quarter note.

    ``time_s`` is the time of ``tick`` in seconds through the tempo map.
    """

    tick: int
    time_s: float
    us_per_beat: int

    @property
    def bpm(self) -> float:
        """Quarter notes per minute."""
        return 60e6 / self.us_per_beat


@dataclass(frozen=True, slots=True)
class TimeSignature:
    """Time signature ``numerator/denominator`` from ``tick`` on."""

    tick: int
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class TempoMap:
    """Conversion from ticks to beats and seconds.

    ``changes`` is sorted by strictly increasing tick and always starts at
    tick 0; between two changes the tempo is constant.
    """

    ticks_per_beat: int
    changes: tuple[TempoChange, ...]

    def __post_init__(self) -> None:
        if self.ticks_per_beat <= 0:
            raise ValueError(f"ticks_per_beat must be positive, got {self.ticks_per_beat}")
        if not self.changes or self.changes[0].tick != 0:
            raise ValueError("a tempo map must start with a change at tick 0")
        for before, after in pairwise(self.changes):
            if after.tick <= before.tick:
                raise ValueError("tempo changes must have strictly increasing ticks")

    @classmethod
    def from_changes(cls, ticks_per_beat: int, changes: Iterable[tuple[int, int]] = ()) -> TempoMap:
        """Build a map from ``(tick, us_per_beat)`` pairs in any order.

        Pairs at the same tick: the last one wins. A change equal to the tempo
        already in force is dropped. Before the first pair the tempo is
        500000 µs per beat (120 BPM), as in MIDI.
        """
        if ticks_per_beat <= 0:
            raise ValueError(f"ticks_per_beat must be positive, got {ticks_per_beat}")
        by_tick: dict[int, int] = {0: DEFAULT_US_PER_BEAT}
        for tick, us_per_beat in sorted(changes, key=lambda pair: pair[0]):
            if tick < 0 or us_per_beat <= 0:
                raise ValueError(f"invalid tempo change at tick {tick}: {us_per_beat} us/beat")
            by_tick[tick] = us_per_beat
        built: list[TempoChange] = []
        for tick, us_per_beat in sorted(by_tick.items()):
            if built and built[-1].us_per_beat == us_per_beat:
                continue
            time_s = built[-1].time_s + _span_s(built[-1], tick, ticks_per_beat) if built else 0.0
            built.append(TempoChange(tick, time_s, us_per_beat))
        return cls(ticks_per_beat, tuple(built))

    def tick_to_seconds(self, tick: int) -> float:
        """Seconds from tick 0 to ``tick`` (a tick ≥ 0), integrating tempo changes."""
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        change = self.changes[bisect_right(self.changes, tick, key=lambda c: c.tick) - 1]
        return change.time_s + _span_s(change, tick, self.ticks_per_beat)

    def tick_to_beats(self, tick: int) -> float:
        """Quarter-note beats from tick 0 to ``tick``."""
        return tick / self.ticks_per_beat

    @property
    def initial_bpm(self) -> float:
        """Tempo at tick 0 in BPM."""
        return self.changes[0].bpm


def _span_s(change: TempoChange, tick: int, ticks_per_beat: int) -> float:
    return (tick - change.tick) * change.us_per_beat / 1e6 / ticks_per_beat


# ------------------------------------------------------------ parts & piece


@dataclass(frozen=True, slots=True)
class Part:
    """One instrument's notes, sorted by ``(onset_tick, pitch)``.

    ``channel`` is the MIDI channel 0–15 of its notes (``None`` if they use
    several); ``program`` the General MIDI program 0–127 set on that channel
    before its first note (``None`` if none was set).
    """

    name: str
    notes: tuple[Note, ...]
    channel: int | None = None
    program: int | None = None

    @property
    def duration_s(self) -> float:
        """Latest note offset in seconds (0.0 without notes)."""
        return max((n.offset_s for n in self.notes), default=0.0)

    @property
    def pitch_range(self) -> tuple[int, int]:
        """``(lowest, highest)`` MIDI pitch; raises ``ValueError`` without notes."""
        pitches = [n.pitch for n in self.notes]
        if not pitches:
            raise ValueError(f"part {self.name!r} has no notes")
        return min(pitches), max(pitches)


@dataclass(frozen=True, slots=True)
class Piece:
    """A loaded MIDI file: timing plus parts (never empty)."""

    title: str
    ticks_per_beat: int
    tempo_map: TempoMap
    time_signatures: tuple[TimeSignature, ...]
    parts: tuple[Part, ...]
    midi_type: int

    def part(self, name: str) -> Part:
        """The part called ``name``; raises :class:`UnknownPartError`."""
        for part in self.parts:
            if part.name == name:
                return part
        raise UnknownPartError(name, self.part_names)

    @property
    def part_names(self) -> list[str]:
        """Part names in file order."""
        return [p.name for p in self.parts]

    @property
    def duration_s(self) -> float:
        """Latest note offset over all parts, in seconds."""
        return max((p.duration_s for p in self.parts), default=0.0)

    @property
    def bpm(self) -> float:
        """Initial tempo in BPM (quarter notes per minute)."""
        return self.tempo_map.initial_bpm

    def split_hands(self, split_pitch: int = 60, part: str | None = None) -> Piece:
        """A copy whose parts are ``"right"`` (pitch ≥ ``split_pitch``) and ``"left"``.

        Both hands come from ``part`` (or the only part when ``part`` is None);
        they keep its channel and program. Raises :class:`SplitError` when
        ``part`` is None and there are several parts, when ``split_pitch`` is
        not 0–127, or when a hand would have no notes;
        :class:`UnknownPartError` for an unknown ``part``.
        """
        if not isinstance(split_pitch, int) or not 0 <= split_pitch <= 127:
            raise SplitError(f"split_pitch must be a MIDI pitch 0-127, got {split_pitch!r}")
        if part is None:
            if len(self.parts) != 1:
                raise SplitError(
                    f"the piece has {len(self.parts)} parts "
                    f"({', '.join(repr(n) for n in self.part_names)}); name the part to split"
                )
            source = self.parts[0]
        else:
            source = self.part(part)
        right = tuple(n for n in source.notes if n.pitch >= split_pitch)
        left = tuple(n for n in source.notes if n.pitch < split_pitch)
        for hand, notes, where in (("right", right, "at or above"), ("left", left, "below")):
            if not notes:
                raise SplitError(
                    f"cannot split part {source.name!r} at pitch {split_pitch}: "
                    f"the {hand} hand would be empty (no notes {where} {split_pitch})"
                )
        hands = (
            Part("right", right, source.channel, source.program),
            Part("left", left, source.channel, source.program),
        )
        return replace(self, parts=hands)


# ------------------------------------------------------------------ loading


def load_midi(source: bytes | str | os.PathLike, *, title: str | None = None) -> Piece:
    """Load a type 0 or type 1 Standard MIDI File.

    ``source`` is the file's bytes (``bytes``/``bytearray``/``memoryview``) or
    a path (``str``/``os.PathLike``; ``OSError`` if it cannot be read).
    ``title`` defaults to the name of a type 1 file's conductor track (a first
    track without notes) or ``"Untitled"``.

    Raises :class:`NotMidiError`, :class:`TruncatedMidiError`,
    :class:`CorruptMidiError`, :class:`UnsupportedMidiError` or
    :class:`NoNotesError`, all :class:`PieceError` (a ``ValueError``).
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        with open(source, "rb") as file:
            data = file.read()
    midi = _parse(data)

    ticks_per_beat = midi.ticks_per_beat
    if midi.type == 0:
        track = midi.tracks[0] if len(midi.tracks) == 1 else mido.merge_tracks(midi.tracks)
        tracks = [track]
    else:
        tracks = list(midi.tracks)

    tempos: list[tuple[int, int]] = []
    signatures: list[tuple[int, int, int]] = []
    for track in tracks:
        for tick, msg in _absolute(track):
            if msg.type == "set_tempo":
                if msg.tempo <= 0:
                    raise CorruptMidiError(
                        f"corrupt MIDI file: set_tempo of 0 us/beat at tick {tick}"
                    )
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
    tempo_map = TempoMap.from_changes(ticks_per_beat, tempos)

    raw_parts: list[tuple[str, _RawPart]] = []
    if midi.type == 0:
        groups = _read_notes(tracks[0], by_channel=True)
        names = _track_names(tracks[0])
        for channel, raw in sorted(groups.items()):
            single = len(groups) == 1 and len(names) == 1
            raw_parts.append((names[0] if single else f"Channel {channel + 1}", raw))
    else:
        for index, track in enumerate(tracks):
            names = _track_names(track) or [f"Track {index + 1}"]
            raw_parts.extend(
                (names[0], raw) for raw in _read_notes(track, by_channel=False).values()
            )

    if not raw_parts:
        raise NoNotesError(
            f"the MIDI file has no notes ({len(midi.tracks)} track(s), "
            "no note_on with velocity > 0)"
        )

    unique_names = _unique(name for name, _ in raw_parts)
    parts = tuple(
        raw.to_part(name, tempo_map) for name, (_, raw) in zip(unique_names, raw_parts, strict=True)
    )

    if title is None:
        first = midi.tracks[0]
        conductor = midi.type == 1 and not any(m.type == "note_on" and m.velocity for m in first)
        names = _track_names(first) if conductor else []
        title = names[0] if names else "Untitled"

    return Piece(
        title=title,
        ticks_per_beat=ticks_per_beat,
        tempo_map=tempo_map,
        time_signatures=_time_signatures(signatures),
        parts=parts,
        midi_type=midi.type,
    )


def _parse(data: bytes) -> mido.MidiFile:
    if not data:
        raise NotMidiError("not a MIDI file: the data is empty")
    if not data.startswith(b"MThd"):
        raise NotMidiError(
            f"not a MIDI file: a Standard MIDI File starts with b'MThd', this starts with "
            f"{data[:4]!r}"
        )
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except EOFError as exc:
        raise TruncatedMidiError(_describe_truncation(data)) from exc
    except Exception as exc:  # mido raises OSError, ValueError, KeySignatureError, ...
        raise CorruptMidiError(f"corrupt MIDI file: {exc or type(exc).__name__}") from exc
    if midi.type not in (0, 1):
        raise UnsupportedMidiError(
            f"MIDI file type {midi.type} is not supported (only type 0 and type 1)"
        )
    if midi.ticks_per_beat <= 0:
        raise UnsupportedMidiError(
            "SMPTE time division (frames per second) is not supported; only ticks per quarter note",
            code="unsupported_time_division",
        )
    if not midi.tracks:
        raise NoNotesError("the MIDI file has no tracks, so no notes")
    return midi


def _describe_truncation(data: bytes) -> str:
    """Say where a file that mido could not finish reading is cut short."""
    prefix = f"truncated MIDI file: the data ends after {len(data)} bytes"
    if len(data) < 14:
        return f"{prefix}, inside the 14-byte MThd header"
    header_size, _, n_tracks, _ = struct.unpack(">L3h", data[4:14])
    pos = 8 + header_size
    for index in range(1, n_tracks + 1):
        if pos + 8 > len(data):
            return f"{prefix}; the header announces {n_tracks} tracks but track {index} is missing"
        size = struct.unpack(">L", data[pos + 4 : pos + 8])[0]
        if pos + 8 + size > len(data):
            return (
                f"{prefix}; track {index} of {n_tracks} announces {size} bytes "
                f"but only {len(data) - pos - 8} are present"
            )
        pos += 8 + size
    return f"{prefix}, in the middle of a message"


def _absolute(track: Iterable[mido.Message]) -> Iterable[tuple[int, mido.Message]]:
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def _track_names(track: Iterable[mido.Message]) -> list[str]:
    """Distinct non-blank track names in order of appearance."""
    names: list[str] = []
    for msg in track:
        if msg.type == "track_name" and msg.name.strip() and msg.name.strip() not in names:
            names.append(msg.name.strip())
    return names


@dataclass
class _RawPart:
    notes: list[tuple[int, int, int, int]]  # (onset_tick, offset_tick, pitch, velocity)
    channels: set[int]
    program: int | None

    def to_part(self, name: str, tempo_map: TempoMap) -> Part:
        ticks = tempo_map.ticks_per_beat
        notes = tuple(
            Note(
                pitch=pitch,
                velocity=velocity,
                onset_s=tempo_map.tick_to_seconds(on),
                offset_s=tempo_map.tick_to_seconds(off),
                onset_beat=on / ticks,
                offset_beat=off / ticks,
                onset_tick=on,
            )
            for on, off, pitch, velocity in sorted(self.notes, key=lambda n: (n[0], n[2], n[1]))
        )
        channel = next(iter(self.channels)) if len(self.channels) == 1 else None
        return Part(name, notes, channel, self.program)


def _read_notes(track: Iterable[mido.Message], *, by_channel: bool) -> dict[int, _RawPart]:
    """Notes of one track grouped by channel (``by_channel``) or all in group 0.

    Groups appear in the order of their first note.
    """
    groups: dict[int, _RawPart] = {}
    programs: dict[int, int] = {}
    sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}
    tick = 0
    for tick, msg in _absolute(track):
        if msg.type == "program_change":
            programs[msg.channel] = msg.program
        elif msg.type == "note_on" and msg.velocity > 0:
            group = msg.channel if by_channel else 0
            if group not in groups:
                groups[group] = _RawPart([], set(), programs.get(msg.channel))
            groups[group].channels.add(msg.channel)
            sounding.setdefault((msg.channel, msg.note), deque()).append((tick, msg.velocity))
        elif msg.type in ("note_on", "note_off"):
            queue = sounding.get((msg.channel, msg.note))
            if queue:
                onset, velocity = queue.popleft()
                group = msg.channel if by_channel else 0
                groups[group].notes.append((onset, tick, msg.note, velocity))
    end = tick
    for (channel, pitch), queue in sounding.items():
        for onset, velocity in queue:
            groups[channel if by_channel else 0].notes.append((onset, end, pitch, velocity))
    return groups


def _unique(names: Iterable[str]) -> list[str]:
    """Names with repeats renamed ``"name (2)"``, ``"name (3)"``…"""
    result: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in result:
            n += 1
            candidate = f"{name} ({n})"
        result.append(candidate)
    return result


def _time_signatures(found: list[tuple[int, int, int]]) -> tuple[TimeSignature, ...]:
    """Changes of time signature by tick; 4/4 at tick 0 unless the file sets one there."""
    by_tick: dict[int, tuple[int, int]] = {0: DEFAULT_TIME_SIGNATURE}
    for tick, numerator, denominator in sorted(found, key=lambda s: s[0]):
        by_tick[tick] = (numerator, denominator)
    result: list[TimeSignature] = []
    for tick, (numerator, denominator) in sorted(by_tick.items()):
        if result and (result[-1].numerator, result[-1].denominator) == (numerator, denominator):
            continue
        result.append(TimeSignature(tick, numerator, denominator))
    return tuple(result)
