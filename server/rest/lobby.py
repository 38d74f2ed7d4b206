"""REST support of the browser client: the lobby's open rooms (a piece's notes,
``GET /api/pieces/{id}/notes``, are in :mod:`server.rest.pieces`).

* ``GET /api/rooms`` (``Authorization: Bearer TOKEN``) → ``{"rooms": [state]}``:
  the rooms of this process that have not finished, newest first, each as the
  ``room:state`` payload (README, Wire protocol) plus ``"created_at"`` (epoch ms,
  server clock). With several processes a room appears on the processes that
  hold a replica of it (those with a member connected, and its creator's).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.appkeys import INVITES, MANAGER
from server.rest.apidoc import Op, Out
from server.rest.common import caller as _caller
from server.rest.common import json_response

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


# --------------------------------------------------------------------------- the document


class RoomListOut(Out):
    rooms: list[dict[str, Any]]


OPERATIONS = [
    Op("GET", "/api/rooms", "Open rooms of this process", "rooms", RoomListOut),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
