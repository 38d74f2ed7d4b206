"""Adding a piece to the library: the one way in, for uploads (``POST /api/pieces``),
generated material (``POST /api/pieces/generate``, ``tutti pieces generate``) and
``tutti pieces import``.

:func:`add_piece` parses the file (MIDI, or MusicXML converted to MIDI) or
generates the material, holds it to the :class:`~server.services.pieces.PieceLimits`,
analyses it (:func:`server.db.repository.library_metadata`), makes its score
(:mod:`server.services.notation`: a MusicXML file's own, a MIDI file converted)
— all of that in a worker process (:mod:`server.services.process_pool`), off the event loop — and
stores it. Nothing is stored when it raises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.errors import TuttiError
from rooms.generate import Request, generate
from rooms.piece import Piece
from server.db import repository
from server.services import notation, process_pool
from server.services.notation import Notation
from server.services.pieces import PieceLimits, load_piece_file


@dataclass(frozen=True, slots=True)
class PieceFile:
    """A Standard MIDI File or MusicXML file to add, and what its sender says of it.

    ``filename``'s suffix tells the format (else the content does). ``title``
    and ``composer`` win over those found in the file; ``fallback_title`` is
    used when neither names the piece (else ``"Untitled"``). ``split_pitch``
    (0–127) splits the one part into ``right``/``left``. ``instrument`` and
    ``style_period`` override what the analysis infers. ``source_type``:
    ``None`` for an upload (``midi_upload`` or ``musicxml_upload`` by format),
    else one of :data:`server.db.models.SOURCE_TYPES` (``cli_import``).
    ``musicxml`` is the score of a MIDI file, when the sender has one (MusicXML,
    plain or ``.mxl``: the starter library); without it a MIDI file is converted.
    ``attribution`` names where a bundled piece comes from.
    """

    data: bytes
    filename: str | None = None
    title: str | None = None
    composer: str | None = None
    split_pitch: int | None = None
    instrument: str | None = None
    style_period: str | None = None
    fallback_title: str | None = None
    source_type: str | None = None
    musicxml: bytes | None = None
    attribution: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A piece ready to store: everything but the database row."""

    piece: Piece
    midi: bytes
    title: str | None
    composer: str | None
    source_type: str
    split_pitch: int | None
    generator: dict[str, Any] | None
    metadata: dict[str, Any]
    tempo_bpm: float  # the tempo generated material was written at, else the file's first
    notation: Notation | None  # None: a MIDI file to convert (see ``size``)
    size: dict[str, Any]  # notes, beats, parts: what the conversion caps
    attribution: str | None = None


@dataclass(frozen=True, slots=True)
class Added:
    """A piece just stored: ``piece`` is :func:`server.db.repository.piece_to_dict` of
    its row; ``midi`` the bytes stored; ``tempo_bpm`` as in :class:`Prepared`."""

    piece: dict[str, Any]
    midi: bytes
    tempo_bpm: float


def _size(piece: Piece) -> dict[str, Any]:
    """Notes, beats to the last note's end, parts: what :func:`notation.midi_to_musicxml` caps."""
    return {
        "notes": sum(len(part.notes) for part in piece.parts),
        "beats": max((n.offset_beat for part in piece.parts for n in part.notes), default=0.0),
        "parts": len(piece.parts),
    }


def prepare(source: PieceFile | Request, limits: PieceLimits) -> Prepared:
    """Parse or generate, check ``limits`` (of a file), analyse: the CPU-heavy half of
    :func:`add_piece`, run in a worker. Raises :class:`rooms.piece.PieceError`
    or :class:`rooms.generate.GenerateError`."""
    if isinstance(source, Request):
        generated = generate(source)  # small by construction: at most 64 measures, 2 parts
        return Prepared(
            piece=generated.piece,
            midi=generated.midi,
            title=source.title,
            composer=None,
            source_type="generated",
            split_pitch=None,
            generator=asdict(source),
            metadata=repository.library_metadata(generated.piece, composer=None),
            tempo_bpm=generated.tempo_bpm,
            notation=None,
            size=_size(generated.piece),
        )
    loaded = load_piece_file(
        source.data,
        filename=source.filename,
        title=source.title,
        split_pitch=source.split_pitch,
        limits=limits,
    )
    piece = loaded.piece
    title = loaded.title or (piece.title if piece.title != "Untitled" else source.fallback_title)
    composer = source.composer or loaded.composer
    if source.source_type is not None:
        source_type = source.source_type
    else:
        source_type = "musicxml_upload" if loaded.format == "musicxml" else "midi_upload"
    if loaded.format == "musicxml":
        score = notation.original(source.data)
    elif source.musicxml is not None:
        score = notation.original(source.musicxml)
    else:
        score = None  # converted by add_piece, in the notation lane
    return Prepared(
        piece=piece,
        midi=loaded.midi,
        title=title,
        composer=composer,
        source_type=source_type,
        split_pitch=source.split_pitch,
        generator=None,
        metadata=repository.library_metadata(
            piece,
            composer=composer,
            instrument=source.instrument,
            style_period=source.style_period,
        ),
        tempo_bpm=piece.bpm,
        notation=score,
        size=_size(piece),
        attribution=source.attribution,
    )


async def add_piece(
    sessionmaker: async_sessionmaker[AsyncSession],
    source: PieceFile | Request,
    *,
    limits: PieceLimits,
    uploaded_by: str | None,
    piece_id: str | None = None,
    convert: bool = True,
) -> Added:
    """Add a file (:class:`PieceFile`) or generated material (a
    :class:`rooms.generate.Request`) to the library; returns what was stored.

    ``uploaded_by`` is the adding user's id (``None`` from the command line).
    ``piece_id`` is a fixed id (the starter library); a taken one fails with
    :class:`sqlalchemy.exc.IntegrityError` and stores nothing. A MIDI file's score
    is converted before it is stored (in the ``"notation"`` lane of
    :mod:`~server.services.process_pool`); with ``convert`` false it is stored
    without one (``notation`` ``"pending"``) for
    :func:`server.services.notation.backfill` (generated material, which asks for
    a quick answer).
    Raises :class:`rooms.piece.PieceError` for a file that cannot be loaded
    (``piece_too_large`` over ``limits``, ``musicxml_unavailable``, the MIDI
    codes), :class:`rooms.generate.GenerateError`, and
    :class:`~rooms.errors.TuttiError` ``unknown_user`` (401) when
    ``uploaded_by`` names no user.
    """
    ready = await process_pool.run(prepare, source, limits)
    score = ready.notation
    if score is None and convert:
        score = await process_pool.run_in(
            "notation", notation.midi_to_musicxml, ready.midi, **ready.size
        )
    score = score or Notation(None, None)
    async with sessionmaker.begin() as db:
        if uploaded_by is not None and await repository.get_user(db, uploaded_by) is None:
            raise TuttiError("unknown_user", "this token's user no longer exists")
        row = await repository.add_piece(
            db,
            piece=ready.piece,
            midi_data=ready.midi,
            title=ready.title,
            composer=ready.composer,
            source_type=ready.source_type,
            split_pitch=ready.split_pitch,
            uploaded_by=uploaded_by,
            generator=ready.generator,
            metadata=ready.metadata,
            piece_id=piece_id,
            attribution=ready.attribution,
            musicxml=score.musicxml,
            notation=score.state,
        )
        return Added(repository.piece_to_dict(row), ready.midi, ready.tempo_bpm)
