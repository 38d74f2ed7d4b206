"""REST support of the browser client: the lobby's open rooms and a piece's notes.

* ``GET /api/rooms`` (``Authorization: Bearer TOKEN``) → ``{"rooms": [state]}``:
  the rooms of this process that have not finished, newest first, each as the
  ``room:state`` payload (README, Wire protocol) plus ``"created_at"`` (epoch ms,
  server clock). With several processes a room appears on the processes that
  hold a replica of it (those with a member connected, and its creator's).
* ``GET /api/pieces/{id}/notes`` → ``{"piece_id", "tempo_bpm", "duration_s",
  "parts": [{"name", "notes": [[onset_s, offset_s, pitch, velocity], …]}]}``:
  every part's notes in seconds from time 0 of the MIDI file at the file's
  tempo (a room at ``room.tempo_bpm`` scales them by ``tempo_bpm /
  room.tempo_bpm``), what the piano roll draws. ``404 unknown_piece``.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.appkeys import INVITES, MANAGER
from server.rest.apidoc import Op, Out
from server.rest.common import caller as _caller
from server.rest.common import error, json_response

routes = web.RouteTableDef()


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    _caller(request)
    now = time.time() * 1000.0
    invites = request.app[INVITES]
    rooms = [
        r
        for r in request.app[MANAGER].rooms.values()
        if not r.is_finished and not invites.is_private(r.room_id)
    ]
    rooms.sort(key=lambda r: r.created_at_ms or 0, reverse=True)
    body = [{**r.state(now), "created_at": r.created_at_ms} for r in rooms]
    return json_response({"rooms": body})


@routes.get("/api/pieces/{piece_id}/notes")
async def piece_notes(request: web.Request) -> web.Response:
    piece_id = request.match_info["piece_id"]
    piece = await request.app[MANAGER].pieces.get(piece_id)
    if piece is None:
        raise error(404, "unknown_piece", f"no piece with id {piece_id!r}")
    parts = [
        {
            "name": part.name,
            "notes": [
                [round(n.onset_s, 4), round(n.offset_s, 4), n.pitch, n.velocity] for n in part.notes
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
    return json_response(body)


# --------------------------------------------------------------------------- the document


class RoomListOut(Out):
    rooms: list[dict[str, Any]]


class PieceNotesOut(Out):
    piece_id: str
    tempo_bpm: float
    duration_s: float
    parts: list[Any]


OPERATIONS = [
    Op("GET", "/api/rooms", "Open rooms of this process", "rooms", RoomListOut),
    Op("GET", "/api/pieces/{piece_id}/notes", "A piece's notes per part (seconds)", "pieces",
       PieceNotesOut, auth=False),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
