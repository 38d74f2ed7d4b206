"""The Socket.IO event surface: :class:`TuttiNamespace`, one method per client event.

Every client event takes an ack. Success acks carry the event's result; a
refused event gets ``{"error": {"code", "message"}}`` and changes nothing.
:meth:`TuttiNamespace.trigger_event` is the only way in, in this order:

1. the server's own ``connect`` (the handshake, :meth:`on_connect`, where the
   token is verified, once) and ``disconnect`` (:meth:`on_disconnect`);
2. the :class:`server.realtime.guard.Guard` limits (``rate_limited``; a
   connection refused past ``max_refusals`` is closed, ``too_many_refusals``);
3. a payload that did not decode (:data:`server.realtime.codec.UNDECODABLE`:
   lone surrogates, not JSON, not ``[name, ...]``) → ``invalid_value``;
4. a name not in :attr:`TuttiNamespace.events` — including ``connect``,
   ``disconnect`` and the other reserved names sent by a client → ``unknown_event``;
5. more than one argument → ``wrong_arity`` (none is a ``null`` payload);
6. the handler: validation (:mod:`server.services.schemas`) and the room
   service; a :class:`rooms.errors.RoomError` becomes its error ack, any other
   exception ``internal_error`` (logged; the connection and the room stay).

Events (shapes in :mod:`server.services.schemas`): ``clock``,
``room:create``, ``room:join``, ``room:leave``, ``room:start``, ``room:end``,
``room:add_partner``, ``room:remove_partner``, ``room:tempo``, ``room:loop``
(:class:`server.realtime.practice.PracticeRunner`), ``note``, ``notes``
(:class:`server.realtime.room_service.RoomService`) and
``sync:push``, ``sync:pull`` (:class:`server.services.sync.SyncService`, the
shapes of the REST routes in :mod:`server.rest.sync`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from rooms.errors import RoomError
from server.db import repository
from server.realtime.codec import UNDECODABLE
from server.realtime.connections import Connection
from server.realtime.guard import Guard, refusal
from server.realtime.room_service import RoomService
from server.services.auth import TokenError, verify_token
from server.services.schemas import (
    AuthIn,
    ClockIn,
    LoopEventIn,
    NoteMsg,
    NotesMsg,
    PartnerAddIn,
    RoomCreateEvent,
    RoomIdIn,
    RoomJoinEvent,
    TempoEventIn,
    parse,
)
from server.services.sync import SyncService
from server.services.sync_messages import PullIn, parse_push

log = logging.getLogger("tutti.events")

Handler = Callable[[str, Any], Awaitable[dict[str, Any]]]


class TuttiNamespace(socketio.AsyncNamespace):
    """Tutti's events on the default namespace (see module)."""

    def __init__(
        self, rooms: RoomService, sync: SyncService, guard: Guard, secret: str, namespace="/"
    ) -> None:
        super().__init__(namespace)
        self.rooms = rooms
        self.sync = sync
        self.guard = guard
        self.secret = secret
        self.events: dict[str, Handler] = {
            "clock": self.on_clock,
            "room:create": self.on_room_create,
            "room:join": self.on_room_join,
            "room:leave": self.on_room_leave,
            "room:start": self.on_room_start,
            "room:end": self.on_room_end,
            "room:add_partner": self.on_room_add_partner,
            "room:remove_partner": self.on_room_remove_partner,
            "room:tempo": self.on_room_tempo,
            "room:loop": self.on_room_loop,
            "note": self.on_note,
            "notes": self.on_notes,
            "sync:push": self.on_sync_push,
            "sync:pull": self.on_sync_pull,
        }

    # -- dispatch ----------------------------------------------------------------------

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Dispatch one event (see module); returns the ack's data."""
        sid = args[0]
        if event == "connect" and self._is_handshake(sid, args):
            return await self.on_connect(*args)
        if event == "disconnect" and not self.server.manager.is_connected(sid, self.namespace):
            # The server's own (the client is going): a client's event of that name
            # comes only while it is connected.
            return await self.on_disconnect(sid)
        try:
            return await self._client_event(event, sid, args[1:])
        except Exception:  # a bug must not take the connection or the room down
            log.exception("%s from %s failed", event, sid)
            return refusal("internal_error", "server error")

    def _is_handshake(self, sid: str, args: tuple) -> bool:
        # The server passes the connection's own WSGI environ (an object a client
        # cannot send) while the connection is still pending.
        return (
            len(args) >= 2
            and not self.server.manager.is_connected(sid, self.namespace)
            and args[1] is self.server.get_environ(sid, self.namespace)
        )

    async def _client_event(self, event: Any, sid: str, data: tuple) -> dict[str, Any]:
        name = event if isinstance(event, str) else ""
        payload = data[0] if data else None
        refused = await self.guard.over_limit(name, sid, payload)
        if refused is not None:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
            if await self.server.count_refusal(eio_sid):
                return self.server.not_handled  # no ack: the connection is being closed
            return refused
        if event is UNDECODABLE:
            return refusal("invalid_value", "the event is not [name, payload] of valid JSON")
        handler = self.events.get(name)
        if handler is None:
            return refusal("unknown_event", f"no event named {event!r}")
        if len(data) > 1:
            return refusal("wrong_arity", f"{name} takes one payload, got {len(data)} arguments")
        try:
            return await handler(sid, payload)
        except RoomError as exc:
            return {"error": exc.to_dict()}

    # -- the connection ----------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        """The handshake: ``auth`` is :class:`server.services.schemas.AuthIn`.

        Raises ``socketio.exceptions.ConnectionRefusedError`` with ``{"code",
        "message"}``: a token error (``missing_token``, ``invalid_token``,
        ``token_expired``, ``unknown_user``), a validation error of ``auth``, or
        a guard's (``account_deleted``, ``too_many_connections``).
        """
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims: dict | None = verify_token(self.secret, token)
            token_error = None
        except TokenError as exc:
            claims, token_error = None, exc
        if claims is not None:
            user_id = claims["sub"]
            await self.guard.refuse_connect(user_id, self.rooms.connections.count(user_id))
        try:
            hello = parse(AuthIn, auth if auth is not None else {})
            if token_error is not None:
                raise token_error
            assert claims is not None
            async with self.rooms.sessionmaker() as db:
                if await repository.get_user(db, claims["sub"]) is None:
                    # e.g. a guest's old token after the guest logged in and was merged
                    raise TokenError("unknown_user", "this token's user no longer exists")
        except (RoomError, TokenError) as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message}
            ) from None
        await self.rooms.connect(
            Connection(
                sid=sid,
                user_id=claims["sub"],
                display_name=claims.get("name") or "player",
                device_id=hello.device_id,
                device_name=hello.device_name,
            )
        )

    async def on_disconnect(self, sid: str, *reason: Any) -> None:
        """The connection went away: it leaves every room it was in."""
        await self.rooms.disconnect(sid)

    # -- events ------------------------------------------------------------------------

    async def on_clock(self, sid: str, data: Any) -> dict[str, Any]:
        """``{"t0", "rtt_ms"?}`` → ``{"t0", "t1", "t2"}`` (server receive/send, epoch ms)."""
        t1 = time.time() * 1000.0
        msg = parse(ClockIn, data)
        self.rooms.clock(sid, msg.rtt_ms)
        return {"t0": msg.t0, "t1": t1, "t2": time.time() * 1000.0}

    async def on_room_create(self, sid: str, data: Any) -> dict[str, Any]:
        """→ ``{"room": state}`` (and ``"invite_code"`` for a private room)."""
        return await self.rooms.create(sid, parse(RoomCreateEvent, data))

    async def on_room_join(self, sid: str, data: Any) -> dict[str, Any]:
        """→ ``{"room": state}`` (and ``"recovered"``, ``"missed"`` with ``recover``)."""
        return await self.rooms.join(sid, parse(RoomJoinEvent, data))

    async def on_room_leave(self, sid: str, data: Any) -> dict[str, Any]:
        """→ ``{"room_id", "left": true, "phase"}``."""
        return await self.rooms.leave(sid, parse(RoomIdIn, data).room_id)

    async def on_room_start(self, sid: str, data: Any) -> dict[str, Any]:
        """→ ``{"room_id", "start_at"}`` (epoch ms of the first beat)."""
        return await self.rooms.start(sid, parse(RoomIdIn, data).room_id)

    async def on_room_end(self, sid: str, data: Any) -> dict[str, Any]:
        """The host ends a started room → ``{"room_id", "session_id"}``."""
        return await self.rooms.end(sid, parse(RoomIdIn, data).room_id)

    async def on_room_add_partner(self, sid: str, data: Any) -> dict[str, Any]:
        """The host seats a computer partner → ``{"room": state, "partner"}``
        (:class:`server.realtime.partners.Partners`)."""
        return await self.rooms.partners.add(sid, parse(PartnerAddIn, data))

    async def on_room_remove_partner(self, sid: str, data: Any) -> dict[str, Any]:
        """The host takes the computer partner out → ``{"room_id", "removed": true}``."""
        return await self.rooms.partners.remove(sid, parse(RoomIdIn, data).room_id)

    async def on_room_tempo(self, sid: str, data: Any) -> dict[str, Any]:
        """The host slows down (or speeds up) the room before the start → ``{"room": state}``."""
        return await self.rooms.practice.tempo(sid, parse(TempoEventIn, data))

    async def on_room_loop(self, sid: str, data: Any) -> dict[str, Any]:
        """The host loops a section (and a tempo ladder) before the start → ``{"room": state}``."""
        return await self.rooms.practice.loop(sid, parse(LoopEventIn, data))

    async def on_note(self, sid: str, data: Any) -> dict[str, Any]:
        """One note → ``{"accepted": 1, "seq"}``."""
        msg = parse(NoteMsg, data)
        return await self.rooms.notes(sid, msg.room_id, [msg.to_event()])

    async def on_notes(self, sid: str, data: Any) -> dict[str, Any]:
        """A batch of at most 64 notes → ``{"accepted", "seq"}`` (the last one's)."""
        msg = parse(NotesMsg, data)
        return await self.rooms.notes(sid, msg.room_id, [e.to_event() for e in msg.events])

    async def on_sync_push(self, sid: str, data: Any) -> dict[str, Any]:
        """``{"client_id", "mutations"}`` → ``{"last_mutation_id", "version"}`` (+ ``error``)."""
        user_id = self.rooms.connections.require(sid).user_id
        return await self.sync.push(user_id, parse_push(data), origin_sid=sid)

    async def on_sync_pull(self, sid: str, data: Any) -> dict[str, Any]:
        """``{"cursor", "limit"?}`` → ``{"changes", "cursor", "has_more"}``."""
        user_id = self.rooms.connections.require(sid).user_id
        msg = parse(PullIn, data if data is not None else {})
        return await self.sync.pull(user_id, msg.cursor, msg.limit)
