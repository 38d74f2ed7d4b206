"""The piece library's files: MIDI and MusicXML bytes (or files) loaded as
:class:`rooms.piece.Piece` objects within :class:`PieceLimits`, the notes
answer of ``GET /api/pieces/{id}/notes``, and :class:`PieceLibrary`, the
cache of stored pieces (loaded in a worker process, never on the event loop).
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.piece import MidiLimits, Piece, load_midi
from server.config import Settings
from server.db import repository
from server.services import process_pool
from server.services.musicxml import XmlLimits, looks_like_musicxml, musicxml_to_midi


@dataclass(frozen=True, slots=True)
class PieceLimits:
    """What a piece sent to the server may hold (defaults: :class:`server.config.Settings`').

    ``max_notes``: notes in the whole piece; ``max_part_notes``: notes of one
    part; ``max_events``: MIDI events in all; ``max_musicxml_bytes``: XML of a
    MusicXML file, unpacked (bytes); ``max_musicxml_entries``: entries of a
    ``.mxl`` zip. Over one: :class:`rooms.piece.PieceTooLargeError`
    (``piece_too_large``, HTTP 413).
    """

    max_notes: int = Settings.max_piece_notes
    max_part_notes: int = Settings.max_part_notes
    max_events: int = Settings.max_midi_events
    max_musicxml_bytes: int = Settings.max_musicxml_bytes
    max_musicxml_entries: int = Settings.max_musicxml_entries

    @classmethod
    def from_settings(cls, settings: Settings) -> PieceLimits:
        """The limits of a :class:`server.config.Settings`."""
        return cls(
            max_notes=settings.max_piece_notes,
            max_part_notes=settings.max_part_notes,
            max_events=settings.max_midi_events,
            max_musicxml_bytes=settings.max_musicxml_bytes,
            max_musicxml_entries=settings.max_musicxml_entries,
        )

    @property
    def midi(self) -> MidiLimits:
        return MidiLimits(self.max_notes, self.max_part_notes, self.max_events)

    @property
    def xml(self) -> XmlLimits:
        return XmlLimits(self.max_musicxml_bytes, self.max_musicxml_entries)


def load_midi_file(path: str | os.PathLike, *, title: str | None = None) -> Piece:
    """:func:`rooms.piece.load_midi` of the file at ``path``; ``OSError`` if it cannot be read."""
    with open(path, "rb") as file:
        return load_midi(file.read(), title=title)


def piece_from_midi(
    midi_data: bytes,
    *,
    title: str | None,
    split_pitch: int | None,
    limits: PieceLimits | None = None,
) -> Piece:
    """Load MIDI bytes as stored (split into hands when ``split_pitch`` is set).

    ``limits`` (none by default: what is stored was accepted) are checked
    before decoding. Raises :class:`rooms.piece.PieceError` on bad input.
    """
    piece = load_midi(midi_data, title=title, limits=limits.midi if limits else None)
    if split_pitch is not None:
        piece = piece.split_hands(split_pitch)
    return piece


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """An uploaded/imported file as stored: the MIDI bytes (converted when the
    file was MusicXML), the parsed piece, and the title/composer found in it."""

    midi: bytes
    piece: Piece
    format: str  # "midi" | "musicxml"
    title: str | None
    composer: str | None


def load_piece_file(
    data: bytes,
    *,
    filename: str | None,
    title: str | None,
    split_pitch: int | None,
    limits: PieceLimits | None = None,
) -> LoadedFile:
    """Load a Standard MIDI File or a MusicXML file (needs the ``musicxml`` extra).

    The format is told by the file name's suffix, else by its content (``MThd``
    → MIDI, zip or XML score → MusicXML). ``limits`` apply to the MusicXML
    document and to the MIDI file (converted or not). Raises
    :class:`rooms.piece.PieceError` (``piece_too_large``, ``musicxml_unavailable``,
    ``invalid_musicxml``, or the MIDI codes). CPU-heavy: call it off the event loop.
    """
    if not data.startswith(b"MThd") and looks_like_musicxml(data, filename):
        converted = musicxml_to_midi(data, limits.xml if limits else None)
        name = title or converted.title
        piece = piece_from_midi(converted.midi, title=name, split_pitch=split_pitch, limits=limits)
        return LoadedFile(converted.midi, piece, "musicxml", name, converted.composer)
    piece = piece_from_midi(data, title=title, split_pitch=split_pitch, limits=limits)
    return LoadedFile(data, piece, "midi", title, None)


def notes_json(piece: Piece, piece_id: str) -> bytes:
    """The body of ``GET /api/pieces/{id}/notes`` (JSON, UTF-8).

    ``{"piece_id", "tempo_bpm", "duration_s", "parts": [{"name", "notes":
    [[onset_s, offset_s, pitch, velocity, onset_beat], …]}]}``: times in
    seconds from tick 0 at the file's tempo, rounded to 0.1 ms; ``onset_beat`` in
    quarter notes from tick 0 (how the page finds a note in the engraved score).
    Each part's notes are in score order (onset, then pitch): a ``score:update``
    mark's index and the final ``notes`` list count in this order.
    """
    parts = [
        {
            "name": part.name,
            "notes": [
                [
                    round(n.onset_s, 4),
                    round(n.offset_s, 4),
                    n.pitch,
                    n.velocity,
                    round(n.onset_beat, 6),
                ]
                for n in sorted(part.notes, key=lambda n: (n.onset_tick, n.pitch))
            ],
        }
        for part in piece.parts
    ]
    body = {
        "piece_id": piece_id,
        "tempo_bpm": piece.bpm,
        "duration_s": piece.duration_s,
        "parts": parts,
    }
    return orjson.dumps(body)


def load_stored(
    midi_data: bytes, title: str | None, split_pitch: int | None, piece_id: str
) -> tuple[Piece, bytes]:
    """A stored piece and its :func:`notes_json`; what a worker process does for
    :class:`PieceLibrary`."""
    piece = piece_from_midi(midi_data, title=title, split_pitch=split_pitch)
    return piece, notes_json(piece, piece_id)


class PieceLibrary:
    """Loads pieces by id from the database, keeping the last ``capacity`` parsed ones
    with their notes answer.

    Decoding and serialising run in a worker process (:mod:`server.services.process_pool`);
    concurrent requests for a piece not yet loaded share one load.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], capacity: int = 64) -> None:
        self._sessionmaker = sessionmaker
        self._cache: OrderedDict[str, tuple[Piece, bytes]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[tuple[Piece, bytes] | None]] = {}
        self._capacity = capacity

    async def get(self, piece_id: str) -> Piece | None:
        """The parsed piece, or ``None`` when no piece has that id.

        Raises :class:`rooms.piece.PieceError` when the stored file does not load.
        """
        entry = await self._entry(piece_id)
        return entry[0] if entry is not None else None

    async def notes(self, piece_id: str) -> bytes | None:
        """:func:`notes_json` of the piece (cached bytes), or ``None`` for an unknown id."""
        entry = await self._entry(piece_id)
        return entry[1] if entry is not None else None

    async def _entry(self, piece_id: str) -> tuple[Piece, bytes] | None:
        entry = self._cache.get(piece_id)
        if entry is not None:
            self._cache.move_to_end(piece_id)
            return entry
        task = self._loading.get(piece_id)
        if task is None:
            task = asyncio.ensure_future(self._load(piece_id))
            self._loading[piece_id] = task
            task.add_done_callback(lambda _: self._loading.pop(piece_id, None))
        return await asyncio.shield(task)

    async def _load(self, piece_id: str) -> tuple[Piece, bytes] | None:
        async with self._sessionmaker() as db:
            row = await repository.get_piece(db, piece_id)
            if row is None:
                return None
            midi, title, split_pitch = row.midi_data, row.title, row.split_pitch
        entry = await process_pool.run(load_stored, midi, title, split_pitch, piece_id)
        self._cache[piece_id] = entry
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return entry
