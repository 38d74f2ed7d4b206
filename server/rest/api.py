"""The REST API of single pieces: upload, one piece, its MIDI file.

(Guest login is in :mod:`server.rest.auth`, saved room sessions in
:mod:`server.rest.sessions`, ``/api/health`` in :mod:`server.rest.health`.)

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from rooms.catalogue import STYLE_PERIODS
from rooms.piece import PieceError
from server.appkeys import SESSIONMAKER, SETTINGS
from server.db import repository
from server.rest.common import caller as _caller
from server.rest.common import error, json_response, read_limited
from server.services.musicxml import MusicXMLUnavailable
from server.services.pieces import load_piece_file

routes = web.RouteTableDef()


@routes.post("/api/pieces")
async def add_piece(request: web.Request) -> web.Response:
    """Body: a Standard MIDI File or a MusicXML file (``.musicxml``/``.xml``
    text or ``.mxl`` zip; needs the ``musicxml`` extra, else ``501
    musicxml_unavailable``), at most ``max_upload_bytes``.

    Query: ``title``, ``composer``, ``split_hands`` (true: split the one part
    into ``right``/``left`` at ``split_pitch``, default 60 = middle C),
    ``filename`` (its suffix tells the format; else the content does),
    ``instrument``, ``style_period`` (see :mod:`server.services.library`).
    """
    caller = _caller(request)
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
    try:
        # music21 takes a while over MusicXML: off the event loop.
        loaded = await asyncio.to_thread(
            load_piece_file,
            data,
            filename=query.get("filename"),
            title=title,
            split_pitch=split_pitch,
        )
    except MusicXMLUnavailable as exc:
        raise error(501, exc.code, str(exc)) from None
    except PieceError as exc:
        raise error(400, exc.code, str(exc)) from None
    composer = query.get("composer") or loaded.composer
    metadata = await asyncio.to_thread(  # the analysis of a long piece takes a moment
        repository.library_metadata,
        loaded.piece,
        composer=composer,
        instrument=instrument,
        style_period=style_period,
    )
    async with request.app[SESSIONMAKER].begin() as db:
        if await repository.get_user(db, caller["sub"]) is None:
            raise error(401, "unknown_user", "this token's user no longer exists")
        row = await repository.add_piece(
            db,
            piece=loaded.piece,
            midi_data=loaded.midi,
            title=loaded.title,
            composer=composer,
            source_type="musicxml_upload" if loaded.format == "musicxml" else "midi_upload",
            split_pitch=split_pitch,
            uploaded_by=caller["sub"],
            metadata=metadata,
        )
        body = repository.piece_to_dict(row)
    return json_response(body, status=201)


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
