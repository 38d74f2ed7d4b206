"""The REST API: guest login, the piece library, saved sessions, health.

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from rooms.catalogue import STYLE_PERIODS
from rooms.errors import RoomError
from rooms.piece import PieceError
from server.appkeys import MANAGER, SECRET, SESSIONMAKER, SETTINGS
from server.db import finished_rooms, repository
from server.rest.common import caller as _caller
from server.rest.common import error, json_response, read_limited
from server.rest.common import json_body as _json_body
from server.services import limits_counter
from server.services.auth import issue_token
from server.services.musicxml import MusicXMLUnavailable
from server.services.pieces import load_piece_file
from server.services.schemas import GuestIn, parse

routes = web.RouteTableDef()


@routes.post("/api/auth/guest")
async def guest_login(request: web.Request) -> web.Response:
    """``{"display_name"}`` → ``{"access_token", "user": {"id", "display_name"}}``."""
    try:
        body = parse(GuestIn, await _json_body(request))
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER].begin() as db:
        user = await repository.create_guest(db, body.display_name)
        user_id, name = user.id, user.display_name
    token = issue_token(
        request.app[SECRET],
        user_id=user_id,
        display_name=name,
        guest=True,
        ttl_s=settings.token_ttl_s,
    )
    return json_response(
        {"access_token": token, "user": {"id": user_id, "display_name": name}}, status=201
    )


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as db:
        await db.execute(text("SELECT 1"))
    manager = request.app[MANAGER]
    body = {
        "status": "ok",
        "database": "ok",
        "rooms": len(manager.rooms),
        "connections": len(manager.connections),
    }
    body["rejections"] = limits_counter.snapshot()  # refusals by limit, this process
    client_manager = manager.sio.manager
    if hasattr(client_manager, "stats"):  # the per-room Redis fan-out's counters
        body["fanout"] = client_manager.stats()
    return json_response(body)


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


async def _own_session(request: web.Request, db) -> dict:
    """The saved session, if the caller took part in it (as player or spectator).

    Anyone else gets the same 404 as for an unknown id: ids are not secrets.
    """
    caller = _caller(request)
    session = await finished_rooms.get_session(db, request.match_info["session_id"])
    if session is None or caller["sub"] not in {p["user_id"] for p in session["participants"]}:
        raise error(404, "unknown_session", "no session with that id among yours")
    return session


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    """A session the caller took part in, with every player's log and result."""
    async with request.app[SESSIONMAKER]() as db:
        return json_response(await _own_session(request, db))


@routes.get("/api/sessions/{session_id}/recording.mid")
async def get_recording(request: web.Request) -> web.Response:
    """The session's MIDI recording (one track per player), for its participants."""
    async with request.app[SESSIONMAKER]() as db:
        session = await _own_session(request, db)
        data = await finished_rooms.get_recording(db, session["session_id"])
    if data is None:
        raise error(404, "unknown_session", "no recording for that session id")
    return web.Response(
        body=data,
        content_type="audio/midi",
        headers={"Content-Disposition": 'attachment; filename="recording.mid"'},
    )
