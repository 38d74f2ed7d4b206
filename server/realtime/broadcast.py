"""Room events to members, through the recovery stream (:mod:`server.realtime.recovery`).

Every room event a member must not miss goes through :meth:`RoomBroadcast.emit`,
which appends it to the room's stream and emits it with the stream's
``epoch`` and the entry's ``offset``; :meth:`RoomBroadcast.missed` answers a
reconnecting member's ``recover``.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from redis.exceptions import RedisError

from server.realtime.recovery import LocalStreams, RedisStreams

log = logging.getLogger("tutti.rooms")

REDIS_ERRORS = (RedisError, OSError)


class RoomBroadcast:
    """Emits room events over ``sio`` after logging them in ``streams``."""

    def __init__(self, sio: socketio.AsyncServer, streams: LocalStreams | RedisStreams) -> None:
        self.sio = sio
        self.streams = streams

    async def logged(self, room_id: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` appended to the room's stream, with its ``epoch`` and ``offset``.

        Raises what the stream raises (``RedisError``/``OSError`` for Redis).
        """
        logged = await self.streams.append(room_id, event, payload)
        if logged is not None:
            payload = {**payload, "epoch": logged[0], "offset": logged[1]}
        return payload

    async def emit(
        self, event: str, payload: dict[str, Any], room_id: str, skip_sid: str | None = None
    ) -> None:
        """Log ``event`` in the room's recovery stream, then emit it to the room's members."""
        payload = await self.logged(room_id, event, payload)
        await self.sio.emit(event, payload, room=room_id, skip_sid=skip_sid)

    async def missed(self, room_id: str, user_id: str, recover: Any) -> list[dict] | None:
        """The events after ``recover`` (``epoch``, ``offset``) without the user's own notes,
        or ``None`` when they cannot be recovered (see :mod:`server.realtime.recovery`)."""
        try:
            missed = await self.streams.since(room_id, recover.epoch, recover.offset)
        except REDIS_ERRORS as exc:
            log.warning("room %s: recovery stream unreadable (%s)", room_id, exc)
            return None
        if missed is None:
            return None
        return [
            m
            for m in missed
            if not (m["event"] in ("note", "notes") and m["data"].get("user_id") == user_id)
        ]

    def drop(self, room_id: str) -> None:
        """Forget the room's local stream (the room is gone)."""
        self.streams.drop(room_id)
