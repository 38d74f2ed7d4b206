"""Who may join a room: private rooms' invite codes and the spectator cap (pure rules).

A private room (created with ``"private": true``) carries an invite code
(:func:`new_invite_code`, 11 URL-safe characters, 64 random bits) in
:attr:`rooms.room.Room.invite_code`; it travels with the room's snapshot but
never in its public ``state``. :func:`admit` is checked before a join changes
anything. There is no list of private rooms: a room is reached only by its id.
"""

from __future__ import annotations

import hmac
import secrets

from rooms.errors import RoomError
from rooms.room import Room

INVITE_MAX_LENGTH = 64
# The refusals of admit(): what server.services.limits_counter counts them as.
REJECTION_KIND = {"invite_required": "invite", "invalid_invite": "invite", "room_full": "room_full"}


def new_invite_code() -> str:
    """A fresh invite code: 11 URL-safe characters (64 random bits)."""
    return secrets.token_urlsafe(8)


def admit(room: Room, user_id: str, role: str, invite: str | None) -> None:
    """Whether ``user_id`` may join ``room`` as ``role`` with ``invite``.

    A member (a rejoin keeps its place) and the host are always let in. Raises
    :class:`RoomError` ``invite_required`` (a private room, no ``invite``),
    ``invalid_invite`` (not the room's code) or ``room_full`` (a spectator
    beyond ``room.settings.max_spectators``; players are capped by the mode,
    in :meth:`Room.join`).
    """
    if user_id in room.members:
        return
    code = room.invite_code
    if code is not None and user_id != room.host:
        if invite is None:
            raise RoomError("invite_required", "this room is private: join with its invite")
        if not hmac.compare_digest(invite.encode(), code.encode()):
            raise RoomError("invalid_invite", "this invite code is not the room's")
    if role == "spectator":
        cap = room.settings.max_spectators
        spectators = sum(1 for m in room.members.values() if m.role == "spectator")
        if spectators >= cap:
            raise RoomError("room_full", f"this room has its {cap} spectators")
