"""Reference pieces loaded from Standard MIDI Files (type 0 and type 1).

:func:`load_midi` turns the bytes of a ``.mid`` file into a :class:`Piece`: its
tempo map, time signatures and one :class:`Part` per instrument, each a sorted
tuple of :class:`rooms.notes.Note`.

Units used throughout: *ticks* are the file's integer time unit
(``ticks_per_beat`` per quarter note), *beats* are quarter notes, *seconds* are
measured from tick 0 through the file's tempo map, tempo is given both as
microseconds per quarter note (``us_per_beat``, what MIDI stores) and as BPM
(quarter notes per minute).

How notes are read (:mod:`rooms.midi_notes`): a note starts at a ``note_on``
with velocity > 0 and ends at the next ``note_off`` (or ``note_on`` with
velocity 0) for the same channel and pitch in the same track; overlapping
notes of the same pitch are closed first in, first out. A note still open at
the end of its track ends at the track's last tick. Zero-length notes (closed
at the tick they start) are kept, with ``offset == onset``. A ``note_off``
with no open note is ignored.

Parts: in a type 1 file each track with notes is one part, named by its
``track_name`` (``"Track N"`` if it has none, N being the 1-based track index;
repeated names get ``" (2)"``, ``" (3)"``…). In a type 0 file each MIDI channel
with notes is one part, in channel order, named ``"Channel N"`` (N = channel +
1), except that a file with a single channel names its only part after the
track's ``track_name`` when the track has exactly one distinct name. Tempo
changes and time signatures are read from every track. Type 2 files are
rejected.

Every failure is a :class:`PieceError` with a machine-readable ``code``; no
``mido``/``struct``/``EOFError`` escapes :func:`load_midi`. With
:class:`~rooms.midi_file.MidiLimits` a file over a cap is refused with
:class:`PieceTooLargeError` before it is decoded.

This module holds the piece and its parts and puts the loading together; the
work is done by :mod:`rooms.midi_file` (bytes → decoded file, caps),
:mod:`rooms.midi_notes` (tracks → notes), :mod:`rooms.tempo` (tempo map, time
signatures), :mod:`rooms.part_names` (unique names) and
:mod:`rooms.piece_errors` (the errors); their public names are importable from
here too. ``rooms`` takes bytes, never paths: reading a file is
:func:`server.services.pieces.load_midi_file`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import mido

from rooms.midi_file import MidiLimits, parse
from rooms.midi_notes import RawPart, absolute, read_notes, track_names
from rooms.notes import Note
from rooms.part_names import unique_names
from rooms.piece_errors import (
    CorruptMidiError,
    NoNotesError,
    NotMidiError,
    PieceError,
    PieceTooLargeError,
    SplitError,
    TruncatedMidiError,
    UnknownPartError,
    UnsupportedMidiError,
)
from rooms.tempo import (
    DEFAULT_TIME_SIGNATURE,
    DEFAULT_US_PER_BEAT,
    TempoChange,
    TempoMap,
    TimeSignature,
    time_signatures,
)

__all__ = [
    "DEFAULT_TIME_SIGNATURE",
    "DEFAULT_US_PER_BEAT",
    "CorruptMidiError",
    "MidiLimits",
    "NoNotesError",
    "NotMidiError",
    "Part",
    "Piece",
    "PieceError",
    "PieceTooLargeError",
    "SplitError",
    "TempoChange",
    "TempoMap",
    "TimeSignature",
    "TruncatedMidiError",
    "UnknownPartError",
    "UnsupportedMidiError",
    "load_midi",
]


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


def load_midi(
    source: bytes | bytearray | memoryview,
    *,
    title: str | None = None,
    limits: MidiLimits | None = None,
) -> Piece:
    """Load a type 0 or type 1 Standard MIDI File from its bytes.

    ``title`` defaults to the name of a type 1 file's conductor track (a first
    track without notes) or ``"Untitled"``. ``limits`` caps notes in all, notes
    of one part and events, checked before decoding (none by default).

    Raises :class:`NotMidiError`, :class:`PieceTooLargeError`,
    :class:`TruncatedMidiError`, :class:`CorruptMidiError`,
    :class:`UnsupportedMidiError` or :class:`NoNotesError`, all
    :class:`PieceError` (a ``ValueError``); ``TypeError`` for anything but
    bytes (a path: :func:`server.services.pieces.load_midi_file`).
    """
    if not isinstance(source, bytes | bytearray | memoryview):
        raise TypeError(
            f"load_midi takes the file's bytes, not {type(source).__name__}; "
            "read a file with server.services.pieces.load_midi_file"
        )
    midi = parse(bytes(source), limits)

    ticks_per_beat = midi.ticks_per_beat
    if midi.type == 0:
        track = midi.tracks[0] if len(midi.tracks) == 1 else mido.merge_tracks(midi.tracks)
        tracks = [track]
    else:
        tracks = list(midi.tracks)

    tempos: list[tuple[int, int]] = []
    signatures: list[tuple[int, int, int]] = []
    for track in tracks:
        for tick, msg in absolute(track):
            if msg.type == "set_tempo":
                if msg.tempo <= 0:
                    raise CorruptMidiError(
                        f"corrupt MIDI file: set_tempo of 0 us/beat at tick {tick}"
                    )
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
    tempo_map = TempoMap.from_changes(ticks_per_beat, tempos)

    raw_parts: list[tuple[str, RawPart]] = []
    if midi.type == 0:
        groups = read_notes(tracks[0], by_channel=True)
        names = track_names(tracks[0])
        for channel, raw in sorted(groups.items()):
            single = len(groups) == 1 and len(names) == 1
            raw_parts.append((names[0] if single else f"Channel {channel + 1}", raw))
    else:
        for index, track in enumerate(tracks):
            names = track_names(track) or [f"Track {index + 1}"]
            raw_parts.extend(
                (names[0], raw) for raw in read_notes(track, by_channel=False).values()
            )

    if not raw_parts:
        raise NoNotesError(
            f"the MIDI file has no notes ({len(midi.tracks)} track(s), "
            "no note_on with velocity > 0)"
        )

    names = unique_names(name for name, _ in raw_parts)
    parts = tuple(
        _to_part(raw, name, tempo_map) for name, (_, raw) in zip(names, raw_parts, strict=True)
    )

    if title is None:
        first = midi.tracks[0]
        conductor = midi.type == 1 and not any(m.type == "note_on" and m.velocity for m in first)
        names = track_names(first) if conductor else []
        title = names[0] if names else "Untitled"

    return Piece(
        title=title,
        ticks_per_beat=ticks_per_beat,
        tempo_map=tempo_map,
        time_signatures=time_signatures(signatures),
        parts=parts,
        midi_type=midi.type,
    )


def _to_part(raw: RawPart, name: str, tempo_map: TempoMap) -> Part:
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
        for on, off, pitch, velocity in sorted(raw.notes, key=lambda n: (n[0], n[2], n[1]))
    )
    channel = next(iter(raw.channels)) if len(raw.channels) == 1 else None
    return Part(name, notes, channel, raw.program)
