"""The steps of a room's story that several processes share, as one process takes them.

:class:`server.realtime.room_service.RoomService` calls these hooks at each
step (the docstring of each says when); on one process they act on the local
room alone. :class:`server.realtime.clustered.ClusteredRoomService` overrides
them to go through Redis (the record, the lock, sequence numbers, due times,
the finish claim and the other processes' partials).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from rooms.errors import RoomError
from rooms.room import Member, PlayerPartial, Room

T = TypeVar("T")


class Sharing:
    """The single-process answers (see module); mixed into ``RoomService``."""

    rooms: dict[str, Room]

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise RoomError("unknown_room", f"no room with id {room_id!r}")
        return room

    async def _change(self, room_id: str, change: Callable[[Room], T]) -> tuple[Room, T]:
        """Join, leave, start: apply ``change(room)``; ``(room, result)``.

        ``change`` may raise ``RoomError``, changing nothing; ``unknown_room``.
        """
        room = self._room(room_id)
        return room, change(room)

    async def _lookup(self, room_id: str, *, fresh: bool = False) -> Room:
        """The room ``room_id`` (``fresh``: as every process knows it); ``unknown_room``."""
        return self._room(room_id)

    async def _created(self, room: Room) -> None:
        """A room was created here."""

    def _claim_seat(self, room: Room, user_id: str) -> None:
        """Before ``user_id`` joins ``room`` (inside :meth:`_change`)."""

    def _seated(self, room: Room, user_id: str) -> None:
        """``user_id`` joined ``room`` from this process (inside :meth:`_change`)."""

    async def _returned(self, room: Room, member: Member) -> None:
        """``member`` joined ``room`` (after :meth:`_change`)."""

    def _holds_seat(self, room: Room, user_id: str) -> bool:
        """Whether ``user_id``'s membership of ``room`` is this process's to end."""
        return True

    async def _leaving(self, room: Room, user_id: str) -> bool:
        """``user_id``'s connection left ``room``: whether its membership must end too."""
        return user_id in room.members

    async def _started(self, room: Room) -> None:
        """``room`` was started from this process."""

    async def _number(self, room: Room, count: int) -> Room:
        """Before ``count`` notes are accepted: the room whose ``seq`` numbers them."""
        return room

    async def _scored(self, room: Room) -> None:
        """Before a ``score:update`` of ``room`` is sent."""

    async def _finish_due(self, room: Room) -> float | None:
        """When ``room`` is due to finish (epoch ms), ``None`` when nothing holds it."""
        return room.finish_due_ms()

    async def _session_id(self, room: Room) -> str:
        """The id of the session ``room`` is about to be saved as: a new one."""
        return uuid.uuid4().hex

    async def _claim_finish(self, room: Room, reason: str, session_id: str) -> str | None:
        """``None`` when this process finishes ``room``, else the session id another gave."""
        return None

    async def _partials_elsewhere(
        self, room: Room, session_id: str, ended_ms: int
    ) -> list[PlayerPartial]:
        """The outcomes of ``room``'s players scored by other processes."""
        return []

    async def _goes_on_elsewhere(self, room: Room) -> bool:
        """Shutdown: whether ``room`` carries on without this process (not finished here)."""
        return False
