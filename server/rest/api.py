"""The REST API: guest login, saved sessions, health (pieces: :mod:`server.rest.pieces`).

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from rooms.errors import RoomError
from server.appkeys import MANAGER, SECRET, SESSIONMAKER, SETTINGS
from server.db import repository
from server.rest.common import caller as _caller
from server.rest.common import error, json_response
from server.rest.common import json_body as _json_body
from server.services import limits_counter
from server.services.auth import issue_token
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


async def _own_session(request: web.Request, db) -> dict:
    """The saved session, if the caller took part in it (as player or spectator).

    Anyone else gets the same 404 as for an unknown id: ids are not secrets.
    """
    caller = _caller(request)
    session = await repository.get_session(db, request.match_info["session_id"])
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
        data = await repository.get_recording(db, session["session_id"])
    if data is None:
        raise error(404, "unknown_session", "no recording for that session id")
    return web.Response(
        body=data,
        content_type="audio/midi",
        headers={"Content-Disposition": 'attachment; filename="recording.mid"'},
    )
