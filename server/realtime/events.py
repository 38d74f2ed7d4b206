"""The Socket.IO event surface: authenticate, validate, hand to the room manager, ack.

Every client event takes an ack. Success acks carry the event's result; a
refused event gets ``{"error": {"code", "message"}}`` and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from rooms.errors import RoomError
from server.db import repository
from server.realtime.room_manager import Connection, RoomManager
from server.services.auth import TokenError, verify_token
from server.services.schemas import (
    AuthIn,
    ClockIn,
    NoteMsg,
    NotesMsg,
    RoomCreateIn,
    RoomIdIn,
    RoomJoinIn,
    parse,
)

log = logging.getLogger("tutti.events")

Handler = Callable[[str, Any], Awaitable[dict[str, Any]]]


def register(sio: socketio.AsyncServer, manager: RoomManager, secret: str) -> None:
    """Attach Tutti's event handlers to ``sio`` (default namespace)."""

    @sio.event
    async def connect(sid: str, environ: dict, auth: Any) -> None:
        try:
            hello = parse(AuthIn, auth if auth is not None else {})
            claims = verify_token(secret, hello.token)
            async with manager.sessionmaker() as db:
                if await repository.get_user(db, claims["sub"]) is None:
                    # e.g. a guest's old token after the guest logged in and was merged
                    raise TokenError("unknown_user", "this token's user no longer exists")
        except (RoomError, TokenError) as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message}
            ) from None
        await manager.connect(
            Connection(
                sid=sid,
                user_id=claims["sub"],
                display_name=claims.get("name") or "player",
                device_id=hello.device_id,
                device_name=hello.device_name,
            )
        )

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        await manager.disconnect(sid)

    def event(name: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``name``, turning every refusal into an error ack."""

        def wrap(handler: Handler) -> Handler:
            async def on_event(sid: str, data: Any = None) -> dict[str, Any]:
                try:
                    return await handler(sid, data)
                except RoomError as exc:
                    return {"error": exc.to_dict()}
                except Exception:  # a bug must not take the connection or the room down
                    log.exception("%s from %s failed", name, sid)
                    return {"error": {"code": "internal_error", "message": "server error"}}

            sio.on(name, on_event)
            return handler

        return wrap

    @sio.on("*")
    async def unknown_event(event: str, sid: str, data: Any = None) -> dict[str, Any]:
        return {"error": {"code": "unknown_event", "message": f"no event named {event!r}"}}

    @event("clock")
    async def clock(sid: str, data: Any) -> dict[str, Any]:
        t1 = time.time() * 1000.0
        msg = parse(ClockIn, data)
        manager.clock(sid, msg.rtt_ms)
        return {"t0": msg.t0, "t1": t1, "t2": time.time() * 1000.0}

    @event("room:create")
    async def room_create(sid: str, data: Any) -> dict[str, Any]:
        return await manager.create(sid, parse(RoomCreateIn, data))

    @event("room:join")
    async def room_join(sid: str, data: Any) -> dict[str, Any]:
        return await manager.join(sid, parse(RoomJoinIn, data))

    @event("room:leave")
    async def room_leave(sid: str, data: Any) -> dict[str, Any]:
        return await manager.leave(sid, parse(RoomIdIn, data).room_id)

    @event("room:start")
    async def room_start(sid: str, data: Any) -> dict[str, Any]:
        return await manager.start(sid, parse(RoomIdIn, data).room_id)

    @event("room:end")
    async def room_end(sid: str, data: Any) -> dict[str, Any]:
        return await manager.end(sid, parse(RoomIdIn, data).room_id)

    @event("note")
    async def note(sid: str, data: Any) -> dict[str, Any]:
        msg = parse(NoteMsg, data)
        return await manager.notes(sid, msg.room_id, [msg.to_event()])

    @event("notes")
    async def notes(sid: str, data: Any) -> dict[str, Any]:
        msg = parse(NotesMsg, data)
        return await manager.notes(sid, msg.room_id, [e.to_event() for e in msg.events])
