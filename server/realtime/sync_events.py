"""Socket.IO events of the sync protocol: ``sync:push`` and ``sync:pull``.

The same semantics and shapes as the REST routes (:mod:`server.rest.sync`):

* ``sync:push {"client_id", "mutations"}`` → ack ``{"last_mutation_id",
  "version"}``, plus ``"error": {"code", "message", "mutation_id"}`` when the
  push stopped early (``mutation_gap`` or a refused mutation; see
  :mod:`server.services.sync`). The user's *other* devices get ``sync:poke``.
* ``sync:pull {"cursor", "limit"?}`` → ack ``{"changes", "cursor", "has_more"}``.

A refused envelope (not an object, bad ``client_id``, more than 100
mutations, a bad ``mutation_id``) gets the usual error ack
``{"error": {"code", "message"}}`` and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from rooms.errors import RoomError
from server.realtime.room_manager import RoomManager
from server.services.schemas import parse
from server.services.sync import PullIn, SyncService, parse_push

log = logging.getLogger("tutti.sync")


def register(sio: socketio.AsyncServer, manager: RoomManager, sync: SyncService) -> None:
    """Attach ``sync:push`` and ``sync:pull``."""

    def user_of(sid: str) -> str:
        connection = manager.connections.get(sid)
        if connection is None:
            raise RoomError("not_connected", "this connection is not authenticated")
        return connection.user_id

    def event(name: str, handler: Callable[[str, Any], Awaitable[dict[str, Any]]]) -> None:
        async def on_event(sid: str, data: Any = None) -> dict[str, Any]:
            try:
                return await handler(sid, data)
            except RoomError as exc:
                return {"error": exc.to_dict()}
            except Exception:  # a bug must not take the connection down
                log.exception("%s from %s failed", name, sid)
                return {"error": {"code": "internal_error", "message": "server error"}}

        sio.on(name, on_event)

    async def push(sid: str, data: Any) -> dict[str, Any]:
        user_id = user_of(sid)
        return await sync.push(user_id, parse_push(data), origin_sid=sid)

    async def pull(sid: str, data: Any) -> dict[str, Any]:
        user_id = user_of(sid)
        msg = parse(PullIn, data if data is not None else {})
        return await sync.pull(user_id, msg.cursor, msg.limit)

    event("sync:push", push)
    event("sync:pull", pull)
