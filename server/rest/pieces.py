"""Every route of the piece library, ``/api/pieces…``.

========================================  ===============================================
route                                     does
========================================  ===============================================
``GET /api/pieces``                       the library, filtered (see
                                          :mod:`server.services.library`):
                                          ``{"pieces", "total", "limit", "offset"}``
``POST /api/pieces``                      add a MIDI or MusicXML file (Bearer token)
                                          → 201, the piece
``GET /api/pieces/random``                one matching piece (``seed`` makes the draw
                                          repeatable); ``404 no_match`` when none matches
``GET /api/pieces/recommended``           pieces for the caller (Bearer token), by the rule
                                          of :mod:`rooms.recommend`: ``{"level",
                                          "pieces": [{**piece, "reason"}]}``
``POST /api/pieces/generate``             sight-reading material (:mod:`rooms.generate`),
                                          stored as source ``generated`` → 201, the piece
``GET /api/pieces/{id}``                  one piece
``GET /api/pieces/{id}/midi``             its MIDI file (``audio/midi``)
``GET /api/pieces/{id}/notes``            its notes per part in seconds: ``{"piece_id",
                                          "tempo_bpm", "duration_s", "parts": [{"name",
                                          "notes": [[onset_s, offset_s, pitch,
                                          velocity, onset_beat], …]}]}`` at the file's
                                          tempo, in score order (a room at
                                          ``room.tempo_bpm`` scales them by ``tempo_bpm /
                                          room.tempo_bpm``), what the piano roll draws
``GET /api/pieces/{id}/analysis``         difficulty features, key and chords per beat
``GET /api/pieces/{id}/musicxml``         its score, MusicXML
                                          (``application/vnd.recordare.musicxml+xml``);
                                          ``404 notation_unavailable`` when it has none
                                          (:mod:`server.services.notation`)
========================================  ===============================================

Adding a piece (upload, generate) goes through
:func:`server.services.intake.add_piece`: parsing, conversion and analysis run
in a worker process, never on the event loop, within the limits of
:class:`~server.services.pieces.PieceLimits` (``413 piece_too_large``).
The fixed paths are registered before ``/api/pieces/{piece_id}`` so that
``/api/pieces/random`` is not taken for a piece id.

Query parameters and bodies are validated with pydantic; bad input answers
``400`` with the codes of :mod:`server.services.schemas` (``unknown_field``,
``out_of_range``, ``invalid_value``, ``wrong_type``…) plus
``duplicate_parameter`` for a query parameter given twice, and changes nothing.
Unknown ids are ``404 unknown_piece``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import defer

from rooms.catalogue import STYLE_PERIODS
from rooms.errors import RoomError
from rooms.generate import KEY_PATTERN, GenerateError, Request
from rooms.recommend import recommend, user_level
from server.appkeys import MANAGER, NOTATION_TASK, SESSIONMAKER, SETTINGS
from server.db import repository
from server.db.models import SheetMusic
from server.rest import audio as audio_api
from server.rest.apidoc import MIDI, Op, Out, Query, model_query
from server.rest.common import caller as _caller
from server.rest.common import error, json_response, read_limited
from server.rest.common import json_body as _json_body
from server.services import intake, library, notation, starter
from server.services.pieces import PieceLimits
from server.services.schemas import _Strict, parse

routes = web.RouteTableDef()
log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def _query(request: web.Request, model: type[M]) -> M:
    query = request.rel_url.query
    for name in query:
        if len(query.getall(name)) > 1:
            raise error(400, "duplicate_parameter", f"query parameter {name!r} is given twice")
    try:
        return parse(model, dict(query))
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None


def _limits(request: web.Request) -> PieceLimits:
    return PieceLimits.from_settings(request.app[SETTINGS])


@routes.get("/api/pieces")
async def list_pieces(request: web.Request) -> web.Response:
    """The library, oldest first, filtered; ``limit``/``offset`` page through it."""
    query = _query(request, library.ListQuery)
    async with request.app[SESSIONMAKER]() as db:
        rows, total = await library.list_pieces(db, query)
        return json_response(
            {
                "pieces": [repository.piece_to_dict(r) for r in rows],
                "total": total,
                "limit": query.limit,
                "offset": query.offset,
            }
        )


@routes.post("/api/pieces")
async def add_piece(request: web.Request) -> web.Response:
    """Body: a Standard MIDI File or a MusicXML file (``.musicxml``/``.xml``
    text or ``.mxl`` zip; needs the ``musicxml`` extra, else ``501
    musicxml_unavailable``), at most ``max_upload_bytes``; or a recording with an
    audio ``Content-Type`` (:func:`server.rest.audio.import_piece`).

    Query: ``title``, ``composer``, ``split_hands`` (true: split the one part
    into ``right``/``left`` at ``split_pitch``, default 60 = middle C),
    ``filename`` (its suffix tells the format; else the content does),
    ``instrument``, ``style_period`` (see :mod:`server.services.library`).
    A piece over the limits of :class:`~server.services.pieces.PieceLimits`
    (notes, notes of a part, MIDI events, a MusicXML zip's unpacked size or
    entries) is ``413 piece_too_large``.
    """
    caller = _caller(request)
    if audio_api.is_audio(request):  # a recording: transcribed into a one-part piece
        return await audio_api.import_piece(request, caller)
    settings = request.app[SETTINGS]
    data = await read_limited(request, settings.max_upload_bytes)
    query = request.rel_url.query
    split = query.get("split_hands", "false").lower()
    if split not in ("true", "false", "1", "0"):
        raise error(400, "invalid_value", "split_hands must be true or false")
    split_pitch = None
    if split in ("true", "1"):
        try:
            split_pitch = int(query.get("split_pitch", "60"))
        except ValueError:
            raise error(400, "invalid_value", "split_pitch must be a MIDI note number") from None
        if not 0 <= split_pitch <= 127:
            raise error(400, "out_of_range", "split_pitch must be 0-127")
    title = query.get("title") or None
    if title is not None and len(title) > 200:
        raise error(400, "invalid_value", "title must be at most 200 characters")
    instrument = query.get("instrument") or None
    if instrument is not None and len(instrument) > 64:
        raise error(400, "invalid_value", "instrument must be at most 64 characters")
    style_period = query.get("style_period") or None
    if style_period is not None and style_period not in STYLE_PERIODS:
        raise error(400, "invalid_value", f"style_period must be one of {', '.join(STYLE_PERIODS)}")
    source = intake.PieceFile(
        data,
        filename=query.get("filename"),
        title=title,
        composer=query.get("composer") or None,
        split_pitch=split_pitch,
        instrument=instrument,
        style_period=style_period,
    )
    # Parsing, conversion and analysis run in a worker process; errors are TuttiErrors.
    added = await intake.add_piece(
        request.app[SESSIONMAKER], source, limits=_limits(request), uploaded_by=caller["sub"]
    )
    return json_response(added.piece, status=201)


@routes.get("/api/pieces/random")
async def random_piece(request: web.Request) -> web.Response:
    query = _query(request, library.RandomQuery)
    async with request.app[SESSIONMAKER]() as db:
        row = await library.random_piece(db, query)
        if row is None:
            raise error(404, "no_match", "no piece in the library matches these criteria")
        return json_response(repository.piece_to_dict(row))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@routes.get("/api/pieces/recommended")
async def recommended(request: web.Request) -> web.Response:
    """What the caller should practise next (rule in :mod:`rooms.recommend`)."""
    user_id = _caller(request)["sub"]
    query = _query(request, library.RecommendQuery)
    async with request.app[SESSIONMAKER]() as db:
        played = await library.history(db, user_id)
        pool = await library.candidates(db, query.instrument)
        chosen = recommend(pool, played, now=datetime.now(UTC), limit=query.limit)
        level = user_level(played)
        rows = {r.id: r for r in await _rows(db, [c.piece_id for c in chosen])}
        pieces = []
        for choice in chosen:
            body = repository.piece_to_dict(rows[choice.piece_id])
            body["reason"] = {
                "level": choice.level,
                "difficulty": choice.difficulty,
                "best_accuracy": choice.best_accuracy,
                "last_practised": _iso(choice.last_practised),
            }
            pieces.append(body)
    return json_response({"level": level, "pieces": pieces})


async def _rows(db, ids: list[str]):
    if not ids:
        return []
    stmt = (
        select(SheetMusic)
        .where(SheetMusic.id.in_(ids))
        .options(defer(SheetMusic.midi_data, raiseload=True))
    )
    return (await db.scalars(stmt)).all()


class GenerateIn(_Strict):
    """``POST /api/pieces/generate`` body; ``seed`` defaults to a fresh random one
    (returned in the piece's ``generator``, so the piece can be made again)."""

    kind: Literal["scale", "arpeggio", "phrase"] = "phrase"
    difficulty: int = Field(default=3, ge=1, le=10)
    key: Annotated[str, Field(max_length=16, pattern=KEY_PATTERN)] = "C major"
    parts: int = Field(default=1, ge=1, le=2)
    measures: int = Field(default=8, ge=1, le=64)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


@routes.post("/api/pieces/generate")
async def generate_piece(request: web.Request) -> web.Response:
    caller = _caller(request)
    try:
        body = parse(GenerateIn, await _json_body(request))
        req = Request(
            kind=body.kind,
            difficulty=body.difficulty,
            key=body.key,
            parts=body.parts,
            measures=body.measures,
            seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        )
    except (RoomError, GenerateError) as exc:
        raise error(400, exc.code, getattr(exc, "message", str(exc))) from None
    added = await intake.add_piece(
        request.app[SESSIONMAKER],
        req,
        limits=_limits(request),
        uploaded_by=caller["sub"],
        convert=False,  # answered at once; its score follows in the background
    )
    convert_pending(request.app)
    return json_response(added.piece, status=201)


async def _piece_row(request: web.Request, db):
    row = await repository.get_piece(db, request.match_info["piece_id"])
    if row is None:
        raise error(404, "unknown_piece", f"no piece with id {request.match_info['piece_id']!r}")
    return row


@routes.get("/api/pieces/{piece_id}")
async def get_piece(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as db:
        return json_response(repository.piece_to_dict(await _piece_row(request, db)))


@routes.get("/api/pieces/{piece_id}/midi")
async def get_piece_midi(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as db:
        row = await _piece_row(request, db)
        return web.Response(body=row.midi_data, content_type="audio/midi")


@routes.get("/api/pieces/{piece_id}/notes")
async def piece_notes(request: web.Request) -> web.Response:
    """The piece's notes per part in seconds (:func:`server.services.pieces.notes_json`),
    what the piano roll draws; loaded in a worker and cached as bytes."""
    piece_id = request.match_info["piece_id"]
    body = await request.app[MANAGER].pieces.notes(piece_id)
    if body is None:
        raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
    return web.Response(body=body, content_type="application/json")


@routes.get("/api/pieces/{piece_id}/analysis")
async def piece_analysis(request: web.Request) -> web.Response:
    """:meth:`rooms.analysis.Analysis.to_json` of the piece, plus its ``id``."""
    piece_id = request.match_info["piece_id"]
    async with request.app[SESSIONMAKER]() as db:
        found = (
            await db.execute(select(SheetMusic.analysis).where(SheetMusic.id == piece_id))
        ).one_or_none()
    if found is None:
        raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
    return json_response({"id": piece_id, **(found[0] or {})})


@routes.get("/api/pieces/{piece_id}/musicxml")
async def piece_musicxml(request: web.Request) -> web.Response:
    """The piece's score (:func:`server.services.notation.musicxml`)."""
    piece_id = request.match_info["piece_id"]
    async with request.app[SESSIONMAKER]() as db:
        data = await notation.musicxml(db, piece_id)
    if data is None:
        raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
    return web.Response(body=data, content_type=notation.MEDIA_TYPE)  # XML names its encoding


async def backfill_on_startup(app: web.Application) -> None:
    """Add the starter library to an empty library (unless ``starter_library`` is off),
    analyse pieces stored before the analysis existed, and start converting the
    pieces stored without notation in the background.

    See :func:`server.services.starter.seed`, :func:`server.services.library.backfill`,
    :func:`server.services.notation.backfill`.
    """
    settings = app[SETTINGS]
    if settings.starter_library:
        await starter.seed(app[SESSIONMAKER], PieceLimits.from_settings(settings))
    await library.backfill(app[SESSIONMAKER])
    app[NOTATION_TASK] = {}
    convert_pending(app)


def convert_pending(app: web.Application) -> None:
    """Start :func:`server.services.notation.backfill` unless it is running.

    A piece stored while it runs may wait for the next call (the next
    generated piece, or the next start).
    """
    holder = app[NOTATION_TASK]
    task = holder.get("task")
    if task is None or task.done():
        holder["task"] = asyncio.create_task(_notation_backfill(app))


async def _notation_backfill(app: web.Application) -> None:
    try:
        while await notation.backfill(app[SESSIONMAKER]):
            pass  # again: pieces stored meanwhile (none converted: nothing left, or no music21)
    except asyncio.CancelledError:
        raise
    except Exception:  # a failing backfill must not take the server down; the next start retries
        log.exception("the notation backfill failed")


async def stop_backfill(app: web.Application) -> None:
    """Cancel the notation backfill (on cleanup): a piece half done is redone next time."""
    task = app.get(NOTATION_TASK, {}).get("task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --------------------------------------------------------------------------- the document


class PieceOut(Out):
    id: str
    title: str
    composer: str | None
    parts: list[Any]
    tempo_bpm: float | None
    duration_seconds: float | None
    difficulty: int | float | None
    source_type: str | None
    split_pitch: int | None
    ticks_per_beat: int | None
    time_signature: Any
    created_at: str | None
    attribution: str | None = None
    notation: Literal["available", "unavailable", "pending"] | None = None


class PieceListOut(Out):
    pieces: list[PieceOut]
    total: int = Field(ge=0)
    limit: int | None
    offset: int = Field(ge=0)


class RecommendedOut(Out):
    level: int | float | None
    pieces: list[PieceOut]


class AnalysisOut(Out):
    id: str


class PieceNotesOut(Out):
    piece_id: str
    tempo_bpm: float
    duration_s: float
    parts: list[Any]


OPERATIONS = [
    Op("GET", "/api/pieces", "The piece library, filtered and paged", "pieces", PieceListOut,
       auth=False, query=model_query(library.ListQuery)),
    Op("GET", "/api/pieces/random", "A random piece matching the filters", "pieces", PieceOut,
       auth=False, query=model_query(library.RandomQuery), errors=(404,)),
    Op("GET", "/api/pieces/recommended", "What the caller should practise next", "pieces",
       RecommendedOut, query=model_query(library.RecommendQuery)),
    Op("POST", "/api/pieces/generate", "Generate sight-reading material", "pieces", PieceOut,
       201, GenerateIn),
    Op("GET", "/api/pieces/{piece_id}/analysis", "A piece's analysis (difficulty, key, chords)",
       "pieces", AnalysisOut, auth=False),
    Op("POST", "/api/pieces", "Import a Standard MIDI File", "pieces", PieceOut, 201, MIDI,
       body_type="audio/midi", errors=(413,), query=(
           Query("title", schema={"type": "string", "maxLength": 200}),
           Query("composer"),
           Query("split_hands", schema={"type": "string", "enum": ["true", "false", "1", "0"]}),
           Query("split_pitch", schema={"type": "integer", "minimum": 0, "maximum": 127}),
       )),
    Op("GET", "/api/pieces/{piece_id}", "One piece", "pieces", PieceOut, auth=False),
    Op("GET", "/api/pieces/{piece_id}/midi", "A piece's MIDI file", "pieces", MIDI,
       auth=False, response_type="audio/midi"),
    Op("GET", "/api/pieces/{piece_id}/notes", "A piece's notes per part (seconds)", "pieces",
       PieceNotesOut, auth=False),
    Op("GET", "/api/pieces/{piece_id}/musicxml", "A piece's score (MusicXML)", "pieces",
       {"type": "string"}, auth=False, response_type=notation.MEDIA_TYPE),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
