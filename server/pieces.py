"""The piece library: stored MIDI files turned into :class:`rooms.piece.Piece` objects, cached."""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.piece import Piece, load_midi
from server.db import repository


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
