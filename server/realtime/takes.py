"""Recorded takes for ``room:add_partner {"from_session", "user_id"}``: read from the database.

:func:`load_take` reads a saved session (:func:`server.db.finished_rooms.get_session`)
and turns one player's final result into a :class:`rooms.takes.Take`, which
:class:`server.realtime.partners.Partners` replays with a
:class:`rooms.takes.TakeFollower`. Only the participants of a session (its
players and spectators) may use its takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rooms.errors import RoomError
from rooms.room import Room
from rooms.takes import Take, take_from_result
from server.db import finished_rooms

if TYPE_CHECKING:
    from server.realtime.room_service import RoomService


async def load_take(
    service: RoomService, caller: str, room: Room, session_id: str, user_id: str
) -> Take:
    """The take of ``user_id`` in saved session ``session_id``, for ``room``.

    Raises ``RoomError``: ``not_host``, ``practice_conflict`` (a loop or wait
    mode), ``not_found`` (no such session), ``forbidden`` (``caller`` was not in
    it), ``no_take`` (``user_id`` played no part there, another piece, or a
    result without per-note detail).
    """
    if caller != room.host:
        raise RoomError("not_host", "only the host can add a computer partner")
    if room.practice.looping or room.practice.wait:
        raise RoomError("practice_conflict", "a recorded take plays neither a loop nor wait mode")
    async with service.sessionmaker() as db:
        saved = await finished_rooms.get_session(db, session_id)
    if saved is None:
        raise RoomError("not_found", f"no saved session {session_id!r}")
    if caller not in {p["user_id"] for p in saved["participants"] or []}:
        raise RoomError("forbidden", "only the participants of a session may use its takes")
    result = saved["results"].get(user_id)
    if result is None:
        raise RoomError("no_take", "that user played no part in that session")
    part = result.get("part")
    if room.piece is None or saved["piece_id"] != room.piece_id or part not in room.part_names:
        raise RoomError("no_take", "that session played another piece")
    notes = room.piece.part(part).notes
    return take_from_result(session_id, user_id, result, notes, piece_bpm=room.piece.bpm)
