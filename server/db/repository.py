"""Small async data-access functions over :mod:`server.db.models`.

Every function takes an :class:`~sqlalchemy.ext.asyncio.AsyncSession` and
leaves the transaction to the caller (it may ``flush`` so that returned rows
are complete), except :func:`save_finished_room`, which takes the session
factory and owns its transaction.

Dicts returned for the API are JSON-ready: datetimes as ISO 8601 strings in
UTC (``"2025-01-31T18:04:05.123000+00:00"``), durations in seconds, tempi in
BPM (quarter notes per minute), asynchrony in ms.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer, undefer

from rooms.analysis import analyse
from rooms.catalogue import grade_of, instrument_of, style_period_of
from server.db.models import (
    SOURCE_TYPES,
    SheetMusic,
    User,
    new_id,
)

if TYPE_CHECKING:
    from rooms.piece import Piece

log = logging.getLogger(__name__)

DISPLAY_NAME_MAX = 100

# --------------------------------------------------------------------------- users


async def create_guest(db: AsyncSession, display_name: str) -> User:
    """Add a guest user and flush it; returns the row (``id`` is uuid4 hex).

    ``display_name`` is stripped; raises ``ValueError`` when it is empty or
    longer than 100 characters.
    """
    name = display_name.strip()
    if not name:
        raise ValueError("display_name must not be empty")
    if len(name) > DISPLAY_NAME_MAX:
        raise ValueError(f"display_name must be at most {DISPLAY_NAME_MAX} characters")
    user = User(id=new_id(), display_name=name, is_guest=True)
    db.add(user)
    await db.flush()
    return user


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return await db.get(User, user_id)


# --------------------------------------------------------------------------- pieces


def estimate_difficulty(piece: Piece) -> int:
    """The 1–10 difficulty of :func:`rooms.analysis.analyse` (see its formula)."""
    return analyse(piece, chords=False).difficulty


def library_metadata(
    piece: Piece,
    *,
    composer: str | None,
    instrument: str | None = None,
    style_period: str | None = None,
) -> dict[str, Any]:
    """The analysed columns of a piece: ``difficulty``, ``key_name``, ``analysis``,
    ``grade``, ``instrument`` (given or from the GM programs) and ``style_period``
    (given or from the composer), see :mod:`rooms.analysis` and
    :mod:`rooms.catalogue`."""
    result = analyse(piece)
    return {
        "difficulty": result.difficulty,
        "key_name": result.key.name if result.key else None,
        "analysis": result.to_json(),
        "grade": grade_of(result.difficulty),
        "instrument": instrument or instrument_of(piece.parts),
        "style_period": style_period or style_period_of(composer),
    }


def _parts_json(piece: Piece) -> list[dict[str, Any]]:
    out = []
    for part in piece.parts:
        pitches = [n.pitch for n in part.notes]
        out.append(
            {
                "name": part.name,
                "notes": len(part.notes),
                "channel": part.channel,
                "program": part.program,
                "lowest_pitch": min(pitches) if pitches else None,
                "highest_pitch": max(pitches) if pitches else None,
            }
        )
    return out


def _time_signature(piece: Piece) -> str:
    signatures = getattr(piece, "time_signatures", ()) or ()
    if not signatures:
        return "4/4"
    first = signatures[0]
    return f"{first.numerator}/{first.denominator}"


async def add_piece(
    db: AsyncSession,
    *,
    piece: Piece,
    midi_data: bytes,
    title: str | None,
    composer: str | None,
    source_type: str,
    split_pitch: int | None,
    uploaded_by: str | None,
    instrument: str | None = None,
    style_period: str | None = None,
    generator: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    piece_id: str | None = None,
    attribution: str | None = None,
    musicxml: bytes | None = None,
    notation: dict[str, Any] | None = None,
) -> SheetMusic:
    """Add a piece and flush it; returns the row.

    ``piece`` is the parsed file (:func:`rooms.piece.load_midi`), already
    split into hands by the caller when ``split_pitch`` is given (the column
    only records it). ``midi_data`` is the original file's bytes. ``title``
    defaults to ``piece.title`` (then ``"Untitled"``). Tempo (BPM), duration
    (s), ticks per beat, the first time signature (``"4/4"`` if none) and the
    parts come from the piece; difficulty, key, analysis, grade, instrument
    and style period from :func:`library_metadata` (``instrument`` and
    ``style_period`` override what it infers); ``generator`` is the request of
    a ``generated`` piece. ``metadata`` is :func:`library_metadata` computed
    beforehand (e.g. off the event loop), used as given. ``piece_id`` is a
    fixed id (a bundled piece; else a new one); ``attribution``, ``musicxml``
    (the score) and ``notation`` (how it was made) fill the columns of the
    same names (see :class:`~server.db.models.SheetMusic`).
    Raises ``ValueError`` for an unknown ``source_type`` (see
    :data:`server.db.models.SOURCE_TYPES`); an unknown ``uploaded_by`` fails
    at flush with :class:`sqlalchemy.exc.IntegrityError`.
    """
    if source_type not in SOURCE_TYPES:
        raise ValueError(f"source_type must be one of {SOURCE_TYPES}, got {source_type!r}")
    row = SheetMusic(
        id=piece_id or new_id(),
        title=(title or piece.title or "Untitled").strip() or "Untitled",
        composer=composer,
        parts=_parts_json(piece),
        tempo_bpm=float(piece.bpm),
        duration_seconds=float(piece.duration_s),
        source_type=source_type,
        split_pitch=split_pitch,
        ticks_per_beat=int(piece.ticks_per_beat),
        time_signature=_time_signature(piece),
        midi_data=bytes(midi_data),
        uploaded_by=uploaded_by,
        generator=generator,
        attribution=attribution,
        musicxml_data=musicxml,
        # Left unset when None: the JSON type would store a JSON null, not SQL NULL.
        **({"notation": notation} if notation is not None else {}),
        **(
            metadata
            or library_metadata(
                piece, composer=composer, instrument=instrument, style_period=style_period
            )
        ),
    )
    db.add(row)
    await db.flush()
    return row


async def list_pieces(db: AsyncSession) -> list[SheetMusic]:
    """All pieces, oldest first, without their MIDI bytes.

    ``midi_data`` is not loaded (touching it raises); use :func:`get_piece`.
    """
    stmt = (
        select(SheetMusic)
        .options(defer(SheetMusic.midi_data, raiseload=True))
        .order_by(SheetMusic.created_at, SheetMusic.id)
    )
    return list((await db.scalars(stmt)).all())


async def get_piece(db: AsyncSession, piece_id: str) -> SheetMusic | None:
    """The piece with ``piece_id`` including ``midi_data``, or ``None``."""
    stmt = (
        select(SheetMusic)
        .where(SheetMusic.id == piece_id)
        .options(undefer(SheetMusic.midi_data))
        .execution_options(populate_existing=True)
    )
    return (await db.scalars(stmt)).one_or_none()


def iso_or_none(value: datetime | None) -> str | None:
    """ISO 8601 text of ``value``, or ``None``."""
    return value.isoformat() if value is not None else None


def piece_to_dict(row: SheetMusic) -> dict[str, Any]:
    """A piece as a JSON-ready dict (no MIDI bytes).

    Keys: ``id``, ``title``, ``composer``, ``parts`` (see
    :class:`~server.db.models.SheetMusic`), ``tempo_bpm``,
    ``duration_seconds``, ``difficulty``, ``source_type``, ``split_pitch``,
    ``ticks_per_beat``, ``time_signature``, ``created_at`` (ISO 8601),
    ``key`` (``"F# minor"`` or ``None``), ``instrument``, ``style_period``,
    ``grade`` (1–8), ``generator`` (``None`` unless generated),
    ``attribution`` (``None`` unless bundled), ``notation``: ``"available"``
    (``GET /api/pieces/{id}/musicxml`` answers the score), ``"unavailable"``
    (its conversion failed) or ``"pending"`` (not converted yet). The full
    analysis is at ``GET /api/pieces/{id}/analysis``.
    """
    return {
        "id": row.id,
        "title": row.title,
        "composer": row.composer,
        "parts": row.parts,
        "tempo_bpm": row.tempo_bpm,
        "duration_seconds": row.duration_seconds,
        "difficulty": row.difficulty,
        "source_type": row.source_type,
        "split_pitch": row.split_pitch,
        "ticks_per_beat": row.ticks_per_beat,
        "time_signature": row.time_signature,
        "created_at": iso_or_none(row.created_at),
        "key": row.key_name,
        "instrument": row.instrument,
        "style_period": row.style_period,
        "grade": row.grade,
        "generator": row.generator,
        "attribution": row.attribution,
        "notation": notation_state(row.notation),
    }


def notation_state(notation: dict[str, Any] | None) -> str:
    """``"available"``, ``"unavailable"`` or ``"pending"`` for a ``notation`` column value."""
    if notation is None:
        return "pending"
    return "unavailable" if "error" in notation else "available"


# --------------------------------------------------------------------------- sessions
