"""The note path every player's notes take, a person's or the computer partner's.

:func:`relay_notes`: number the notes (:meth:`server.realtime.sharing.Sharing._number`),
score and record them (:meth:`rooms.room.Room.accept`), relay them to the room
as ``note`` (one) or ``notes`` (a batch) with their ``seq`` (through the
recovery stream, :class:`server.realtime.broadcast.RoomBroadcast`), time each
step for the metrics and schedule the player's throttled ``score:update``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rooms.notes import NoteEvent
from rooms.recording import RecordedEvent
from rooms.room import Room
from server.realtime.timers import now_ms

if TYPE_CHECKING:
    from server.realtime.room_service import RoomService


async def relay_notes(
    service: RoomService,
    room: Room,
    user_id: str,
    events: Sequence[NoteEvent],
    *,
    skip_sid: str | None = None,
    received: float | None = None,
    score: bool = True,
) -> list[RecordedEvent]:
    """Accept ``events`` (``t`` epoch ms) of ``user_id`` in ``room`` and relay them.

    ``skip_sid``: the sender's connection, which does not get its own notes
    back (``None``: everyone gets them). ``received``: ``time.perf_counter()``
    when the notes came in, for the metrics. ``score``: send the player's
    ``score:update`` (not for the computer partner). Returns the recorded
    events. Raises ``RoomError`` (:meth:`rooms.room.Room.accept`'s), changing nothing.
    """
    received = time.perf_counter() if received is None else received
    room = await service._number(room, len(events))
    scoring = time.perf_counter()
    recorded = room.accept(user_id, events, now_ms())
    scored = time.perf_counter()
    relay = [
        {"type": e.type, "pitch": e.pitch, "velocity": e.velocity, "t": e.t_ms, "seq": e.seq}
        for e in recorded
    ]
    room_id = room.room_id
    head = {"room_id": room_id, "user_id": user_id, "part": recorded[0].part}
    if len(relay) == 1:
        await service.broadcast.emit("note", {**head, **relay[0]}, room_id, skip_sid=skip_sid)
    else:
        await service.broadcast.emit("notes", {**head, "events": relay}, room_id, skip_sid=skip_sid)
    if service.metrics is not None:
        service.metrics.note_relayed(len(relay), received, scoring, scored, time.perf_counter())
    if score:
        service.scores.schedule(room_id, user_id, lambda: service._send_score_update(room, user_id))
    return recorded
