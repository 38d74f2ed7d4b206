"""The piece library: stored MIDI files turned into :class:`rooms.piece.Piece` objects, cached;
uploaded files (MIDI or MusicXML) loaded for storage."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.piece import Piece, load_midi
from server.db import repository
from server.services.musicxml import looks_like_musicxml, musicxml_to_midi


def load_midi_file(path: str | os.PathLike, *, title: str | None = None) -> Piece:
    """:func:`rooms.piece.load_midi` of the file at ``path``; ``OSError`` if it cannot be read."""
    with open(path, "rb") as file:
        return load_midi(file.read(), title=title)


def piece_from_midi(midi_data: bytes, *, title: str | None, split_pitch: int | None) -> Piece:
    """Load MIDI bytes as stored (split into hands when ``split_pitch`` is set).

    Raises :class:`rooms.piece.PieceError` on bad input.
    """
    piece = load_midi(midi_data, title=title)
    if split_pitch is not None:
        piece = piece.split_hands(split_pitch)
    return piece


class PieceLibrary:
    """Loads pieces by id from the database, keeping the last ``capacity`` parsed ones."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], capacity: int = 64) -> None:
        self._sessionmaker = sessionmaker
        self._cache: OrderedDict[str, Piece] = OrderedDict()
        self._capacity = capacity

    async def get(self, piece_id: str) -> Piece | None:
        """The parsed piece, or ``None`` when no piece has that id."""
        piece = self._cache.get(piece_id)
        if piece is not None:
            self._cache.move_to_end(piece_id)
            return piece
        async with self._sessionmaker() as db:
            row = await repository.get_piece(db, piece_id)
            if row is None:
                return None
            piece = piece_from_midi(row.midi_data, title=row.title, split_pitch=row.split_pitch)
        self._cache[piece_id] = piece
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
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
    data: bytes, *, filename: str | None, title: str | None, split_pitch: int | None
) -> LoadedFile:
    """Load a Standard MIDI File or a MusicXML file (needs the ``musicxml`` extra).

    The format is told by the file name's suffix, else by its content (``MThd``
    → MIDI, zip or XML score → MusicXML). Raises :class:`rooms.piece.PieceError`
    (``musicxml_unavailable``, ``invalid_musicxml``, or the MIDI codes).
    """
    if not data.startswith(b"MThd") and looks_like_musicxml(data, filename):
        converted = musicxml_to_midi(data)
        name = title or converted.title
        piece = piece_from_midi(converted.midi, title=name, split_pitch=split_pitch)
        return LoadedFile(converted.midi, piece, "musicxml", name, converted.composer)
    piece = piece_from_midi(data, title=title, split_pitch=split_pitch)
    return LoadedFile(data, piece, "midi", title, None)
