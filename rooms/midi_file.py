"""Standard MIDI File bytes → a decoded :class:`mido.MidiFile`, with coded errors and size caps.

:func:`parse` refuses what :mod:`rooms.piece` cannot load (not MIDI,
truncated, corrupt, type 2, SMPTE timing) with a
:class:`~rooms.piece_errors.PieceError` of its own code, and, before decoding
anything, a file over the caps of :class:`MidiLimits` with
:class:`~rooms.piece_errors.PieceTooLargeError` (``piece_too_large``): decoding
with mido costs about 20 µs and a few hundred bytes per event, so a 5 MB file
of 800 000 notes would take many seconds and hundreds of MB to refuse after
decoding. The caps are checked by reading the raw track chunks (delta times,
status bytes, running status, lengths) and stop as soon as a count is over.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import mido

from rooms.piece_errors import (
    CorruptMidiError,
    NoNotesError,
    NotMidiError,
    PieceTooLargeError,
    TruncatedMidiError,
    UnsupportedMidiError,
)


@dataclass(frozen=True, slots=True)
class MidiLimits:
    """Caps on a MIDI file, each ``None`` for none.

    ``notes``: notes in the whole file (a note is a ``note_on`` with velocity
    > 0); ``part_notes``: notes of one part (a track of a type 1 file, a
    channel of a type 0 file, as :func:`rooms.piece.load_midi` makes parts);
    ``events``: MIDI events (messages of every kind) in all tracks.
    """

    notes: int | None = None
    part_notes: int | None = None
    events: int | None = None


# Data bytes after a system common/real-time status byte (0xF1–0xFE, not sysex).
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}


def check_limits(data: bytes, limits: MidiLimits) -> None:
    """Raise :class:`PieceTooLargeError` when ``data`` (a file with an ``MThd``
    header) is over a cap of ``limits``; linear in the file's size, stops at the first
    count over. Malformed chunks end the count quietly (:func:`parse` reports them)."""
    if len(data) < 14:
        return
    header_size, midi_type = struct.unpack(">LH", data[4:10])
    size = len(data)
    pos = 8 + header_size
    notes = events = 0
    per_part: dict[int, int] = {}  # track index (type 1) or channel (type 0) → notes
    track = 0
    while pos + 8 <= size and data[pos : pos + 4] == b"MTrk":
        end = min(size, pos + 8 + struct.unpack(">L", data[pos + 4 : pos + 8])[0])
        i, status = pos + 8, 0
        while i < end:
            while i < end and data[i] & 0x80:  # delta time, a variable-length quantity
                i += 1
            i += 1
            if i >= end:
                break
            byte = data[i]
            if byte < 0x80:  # running status: this is the first data byte
                if not status:
                    break
                kind = status
                i += kind in (0xF0, 0xF7)  # as mido: sysex then reads its length after it
            else:
                kind = byte
                i += 1
                if byte != 0xFF:  # as mido: meta events leave the running status alone
                    status = byte
            events += 1
            if limits.events is not None and events > limits.events:
                raise PieceTooLargeError(
                    f"the MIDI file has more than {limits.events} events; "
                    f"at most {limits.events} are accepted"
                )
            if kind == 0xFF or kind in (0xF0, 0xF7):  # meta (type byte first) or sysex
                i += kind == 0xFF
                length = 0
                while i < end and data[i] & 0x80:
                    length = (length << 7) | (data[i] & 0x7F)
                    i += 1
                if i < end:
                    length = (length << 7) | data[i]
                i += 1 + length
            elif kind >= 0xF0:
                if kind not in _SYSTEM_DATA:
                    break
                i += _SYSTEM_DATA[kind]
            elif kind & 0xF0 in (0xC0, 0xD0):
                i += 1
            else:
                if kind & 0xF0 == 0x90 and i + 1 < end and data[i + 1]:
                    notes += 1
                    part = track if midi_type == 1 else kind & 0x0F
                    per_part[part] = count = per_part.get(part, 0) + 1
                    _check_notes(notes, count, limits)
                i += 2
        pos = end
        track += 1


def _check_notes(notes: int, part_notes: int, limits: MidiLimits) -> None:
    if limits.notes is not None and notes > limits.notes:
        raise PieceTooLargeError(
            f"the piece has more than {limits.notes} notes; at most {limits.notes} are accepted"
        )
    if limits.part_notes is not None and part_notes > limits.part_notes:
        raise PieceTooLargeError(
            f"a part of the piece has more than {limits.part_notes} notes; "
            f"at most {limits.part_notes} are accepted in one part"
        )


def parse(data: bytes, limits: MidiLimits | None = None) -> mido.MidiFile:
    """Decode a type 0 or type 1 file; raises a :class:`~rooms.piece_errors.PieceError`.

    Order: :class:`NotMidiError`, then :class:`PieceTooLargeError` (``limits``),
    then what decoding finds (:class:`TruncatedMidiError`,
    :class:`CorruptMidiError`, :class:`UnsupportedMidiError`,
    :class:`NoNotesError` for a file without tracks).
    """
    if not data:
        raise NotMidiError("not a MIDI file: the data is empty")
    if not data.startswith(b"MThd"):
        raise NotMidiError(
            f"not a MIDI file: a Standard MIDI File starts with b'MThd', this starts with "
            f"{data[:4]!r}"
        )
    if limits is not None:
        check_limits(data, limits)
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except EOFError as exc:
        raise TruncatedMidiError(describe_truncation(data)) from exc
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


def describe_truncation(data: bytes) -> str:
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
