"""Saved room sessions: what a finished room left behind, for those who took part.

A *room session* is one run of a room (:mod:`server.realtime`) saved when it
finished: its piece, players, per-player logs and results, and a MIDI
recording. (Not the practice *timers* of ``/api/practice/sessions``, which
are logbook entries: :mod:`server.rest.practice_timers`.)

* ``GET /api/sessions/{session_id}`` → ``{"session_id", "room_id", "name",
  "mode", "piece_id", "piece_title", "tempo_bpm", "host_user_id",
  "start_time", "end_time", "duration_seconds", "end_reason",
  "participants", "asynchrony_ms", "logs", "results"}`` (times ISO 8601,
  durations in seconds, asynchrony in ms).
* ``GET /api/sessions/{session_id}/recording.mid`` → ``audio/midi``, one
  track per player.

Both need ``Authorization: Bearer TOKEN``; a session the caller did not take
part in (as player or spectator) answers ``404 unknown_session``, the same as
an unknown id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.appkeys import SESSIONMAKER
from server.db import finished_rooms
from server.rest.apidoc import MIDI, Op, Out
from server.rest.common import caller as _caller
from server.rest.common import error, json_response

routes = web.RouteTableDef()


async def _own_room_session(request: web.Request, db) -> dict:
    """The saved room session, if the caller took part in it (as player or spectator).

    Anyone else gets the same 404 as for an unknown id: ids are not secrets.
    """
    caller = _caller(request)
    session = await finished_rooms.get_session(db, request.match_info["session_id"])
    if session is None or caller["sub"] not in {p["user_id"] for p in session["participants"]}:
        raise error(404, "unknown_session", "no session with that id among yours")
    return session


@routes.get("/api/sessions/{session_id}")
async def get_room_session(request: web.Request) -> web.Response:
    """A room session the caller took part in, with every player's log and result."""
    async with request.app[SESSIONMAKER]() as db:
        return json_response(await _own_room_session(request, db))


@routes.get("/api/sessions/{session_id}/recording.mid")
async def get_room_recording(request: web.Request) -> web.Response:
    """The room session's MIDI recording (one track per player), for its participants."""
    async with request.app[SESSIONMAKER]() as db:
        session = await _own_room_session(request, db)
        data = await finished_rooms.get_recording(db, session["session_id"])
    if data is None:
        raise error(404, "unknown_session", "no recording for that session id")
    return web.Response(
        body=data,
        content_type="audio/midi",
        headers={"Content-Disposition": 'attachment; filename="recording.mid"'},
    )


# --------------------------------------------------------------------------- the document


class SessionOut(Out):
    session_id: str
    room_id: str | None
    name: str | None
    mode: str | None
    piece_id: str | None
    piece_title: str | None
    tempo_bpm: float | None
    host_user_id: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    end_reason: str | None
    participants: list[dict[str, Any]]
    asynchrony_ms: float | None
    logs: list[dict[str, Any]]
    results: dict[str, Any]


OPERATIONS = [
    Op("GET", "/api/sessions/{session_id}", "A saved session the caller took part in",
       "sessions", SessionOut),
    Op("GET", "/api/sessions/{session_id}/recording.mid", "A session's MIDI recording",
       "sessions", MIDI, response_type="audio/midi"),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
