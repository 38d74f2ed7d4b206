"""Socket.IO guards: rate limits, connection caps, private rooms, room size.

:func:`install` wraps every handler registered on the default namespace
(after :mod:`server.realtime.events` and :mod:`server.realtime.sync_events` registered
theirs), so each event passes here first:

* ``connect`` — refused (``connect_error`` data ``{"code", "message"}``) with
  ``account_deleted`` for a deactivated user's token and
  ``too_many_connections`` when the user already has
  ``max_connections_per_user`` connections on this process.
* every event — the per-connection limits of :mod:`server.services.limits`:
  ``note``/``notes`` take their events (a batch costs its length) from the
  note quota, every other event one from the event limit. Over a limit the
  ack is ``{"error": {"code": "rate_limited", "message", "retry_after"}}``
  (s) and nothing else happens; the connection stays.
* ``room:create`` takes ``"private": bool`` (default false): a private room's
  ack adds ``"invite_code"`` (11 URL-safe characters, 64 random bits).
* ``room:join`` takes ``"invite": str``: joining a private room needs its
  code — ``invite_required`` without one, ``invalid_invite`` for a wrong one
  — unless the user is its host or already a member (a rejoin). A
  spectator beyond ``max_spectators`` is refused ``room_full`` (players are
  capped by the room's mode). There is no list of rooms: a room is reached
  only by its id.

Invite codes live in the process, and in Redis
(``tutti:room:{id}:invite``, a day's TTL) when rooms are shared.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import Any

import socketio
from aiohttp import web

from rooms.errors import RoomError
from server.config import Settings
from server.services.auth import TokenError, verify_token
from server.services.limits import RateLimiter
from server.services.limits_counter import record_rejection
from server.services.privacy import is_deactivated

log = logging.getLogger("tutti.guard")

NOTE_EVENTS = ("note", "notes")
UNGUARDED = ("connect", "disconnect")
# Clock samples come in bursts (8 at a time, benchmarks send hundreds) and cost less
# than the limit check itself: they are not counted.
UNLIMITED = ("clock",)
INVITE_TTL_S = 24 * 3600
INVITE_MAX_LENGTH = 64


def _refusal(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


class Invites:
    """Invite codes of private rooms: ``room_id`` → ``{"code", "host"}``."""

    def __init__(self, manager) -> None:
        self.manager = manager
        self._local: dict[str, dict[str, str]] = {}

    def _key(self, room_id: str) -> str:
        return f"tutti:room:{room_id}:invite"

    async def create(self, room_id: str, host: str) -> str:
        code = secrets.token_urlsafe(8)
        record = {"code": code, "host": host}
        # Rooms of this process that are gone need no code any more.
        for known in [r for r in self._local if r not in self.manager.rooms]:
            del self._local[known]
        self._local[room_id] = record
        directory = self.manager.directory
        if directory is not None:
            try:
                await directory.redis.set(self._key(room_id), json.dumps(record), ex=INVITE_TTL_S)
            except Exception as exc:  # noqa: BLE001 - Redis away: this process still knows
                log.warning("room %s: invite not shared (%s)", room_id, exc)
        return code

    def is_private(self, room_id: str) -> bool:
        """Whether ``room_id``, a room created on this process, is private."""
        return room_id in self._local

    async def get(self, room_id: str) -> dict[str, str] | None:
        if room_id in self._local:
            return self._local[room_id]
        directory = self.manager.directory
        if directory is None:
            return None
        try:
            raw = await directory.redis.get(self._key(room_id))
        except Exception as exc:  # noqa: BLE001
            log.warning("room %s: invite unreadable (%s)", room_id, exc)
            return None
        return json.loads(raw) if raw else None


def _take(data: Any, field: str) -> tuple[Any, Any]:
    """``data`` without ``field``, and the field's value (None when absent)."""
    if isinstance(data, dict) and field in data:
        rest = dict(data)
        return rest, rest.pop(field)
    return data, None


def install(
    sio: socketio.AsyncServer, manager, limiter: RateLimiter, settings: Settings, secret: str
) -> Invites:
    """Wrap the default namespace's handlers with the guards above; the private rooms'
    :class:`Invites` (what ``GET /api/rooms`` must not list)."""
    invites = Invites(manager)
    handlers = sio.handlers.get("/", {})

    def wrap_connect(original):
        async def connect(sid: str, environ: dict, auth: Any = None):
            token = auth.get("token") if isinstance(auth, dict) else None
            try:
                claims = verify_token(secret, token)
            except TokenError:
                claims = None  # the original handler refuses it with the reason
            if claims is not None:
                user_id = claims["sub"]
                if await is_deactivated(manager.sessionmaker, user_id):
                    raise socketio.exceptions.ConnectionRefusedError(
                        "this account was deleted",
                        {"code": "account_deleted", "message": "this account was deleted"},
                    )
                count = sum(1 for c in manager.connections.values() if c.user_id == user_id)
                if count >= settings.max_connections_per_user:
                    record_rejection("connections")
                    message = (
                        f"at most {settings.max_connections_per_user} connections per user; "
                        "close another device or tab first"
                    )
                    raise socketio.exceptions.ConnectionRefusedError(
                        message, {"code": "too_many_connections", "message": message}
                    )
            return await original(sid, environ, auth)

        return connect

    async def over_limit(name: str, sid: str, data: Any) -> dict[str, Any] | None:
        if name in NOTE_EVENTS:
            cost = 1
            if name == "notes" and isinstance(data, dict) and isinstance(data.get("events"), list):
                cost = max(1, min(len(data["events"]), 64))  # more is refused by validation
            wait = await limiter.hit("notes", sid, cost)
            what = "notes"
        else:
            wait = await limiter.hit("events", sid)
            what = "events"
        if wait is None:
            return None
        return _refusal(
            "rate_limited",
            f"too many {what} on this connection; try again in {wait:.2f} s",
            retry_after=round(wait, 3),
        )

    def wrap_event(name: str, original):
        async def guarded(sid: str, data: Any = None):
            refused = await over_limit(name, sid, data)
            if refused is not None:
                return refused
            return await original(sid, data)

        return guarded

    def wrap_catch_all(original):
        async def guarded(event: str, sid: str, data: Any = None):
            refused = await over_limit(event, sid, data)
            if refused is not None:
                return refused
            return await original(event, sid, data)

        return guarded

    def wrap_create(original):
        async def create(sid: str, data: Any = None):
            rest, private = _take(data, "private")
            if private is not None and not isinstance(private, bool):
                return _refusal("wrong_type", "private must be true or false")
            answer = await original(sid, rest)
            if private and isinstance(answer, dict) and "room" in answer:
                room = answer["room"]
                answer["invite_code"] = await invites.create(room["room_id"], room["host"])
            return answer

        return create

    def wrap_join(original):
        async def join(sid: str, data: Any = None):
            rest, invite = _take(data, "invite")
            if invite is not None and not isinstance(invite, str):
                return _refusal("wrong_type", "invite must be a string")
            if isinstance(invite, str) and not 1 <= len(invite) <= INVITE_MAX_LENGTH:
                return _refusal("invalid_value", f"invite has 1-{INVITE_MAX_LENGTH} characters")
            connection = manager.connections.get(sid)
            room_id = rest.get("room_id") if isinstance(rest, dict) else None
            if connection is not None and isinstance(room_id, str):
                refused = await admit(connection.user_id, room_id, invite, rest)
                if refused is not None:
                    return refused
            return await original(sid, rest)

        return join

    async def admit(user_id: str, room_id: str, invite: str | None, msg: dict):
        try:
            room = await manager._get_room(room_id)
        except RoomError:
            return None  # the handler answers unknown_room
        if user_id in room.members:
            return None  # a rejoin keeps its place
        record = await invites.get(room_id)
        if record is not None and user_id != record["host"]:
            if invite is None:
                record_rejection("invite")
                return _refusal("invite_required", "this room is private: join with its invite")
            if not hmac.compare_digest(invite.encode(), record["code"].encode()):
                record_rejection("invite")
                return _refusal("invalid_invite", "this invite code is not the room's")
        if msg.get("role") == "spectator":
            spectators = sum(1 for m in room.members.values() if m.role == "spectator")
            if spectators >= settings.max_spectators:
                record_rejection("room_full")
                return _refusal(
                    "room_full", f"this room has its {settings.max_spectators} spectators"
                )
        return None

    for name, handler in list(handlers.items()):
        if name in UNLIMITED:
            continue
        if name in UNGUARDED:
            if name == "connect":
                handlers[name] = wrap_connect(handler)
            continue
        if name == "*":
            handlers[name] = wrap_catch_all(handler)
            continue
        if name == "room:create":
            handler = wrap_create(handler)
        elif name == "room:join":
            handler = wrap_join(handler)
        handlers[name] = wrap_event(name, handler)
    return invites


INVITES: web.AppKey[Invites] = web.AppKey("invites", Invites)
