"""Practice tools on the wire: ``room:tempo``, ``room:loop``, the passes of a loop, wait mode.

The rules are :mod:`rooms.practice` (through :class:`rooms.room.Room`); this
module only keeps their clock. When a looping room starts, and at the end of
every pass (:meth:`rooms.room.Room.pass_due_ms`), :class:`PracticeRunner`
asks the room for the next pass (:meth:`rooms.room.Room.advance_pass`,
inside the service's ``_change`` so that a cluster shares it) and tells the
members ``room:pass`` (through the recovery stream)::

    {"room_id", "loop": {"from_bar", "to_bar"},
     "previous": {"pass", "tempo_pct", "tempo_bpm", "accuracy": {user_id: 0-1}} | null,
     "next": {"pass", "start_at", "end_at", "tempo_pct", "tempo_bpm",
              "clicks": [epoch ms]} | null}

``clicks`` are the count-in beats before ``start_at``; ``next`` null means
the loop is done and the room finishes after its grace period (the finish
timer of :class:`server.realtime.room_service.RoomService`, which follows
:meth:`rooms.room.Room.finish_due_ms`). On several processes the passes are
run by the process that started the room.

Wait mode (:mod:`rooms.wait_mode`): at the start and after every chord the
player completes, the members get ``room:wait`` ``{"room_id", "user_id",
"chord", "chords", "onset_beat", "pitches", "due_ms", "due_at", "waited_ms"}``
(:meth:`rooms.wait_mode.WaitScorer.position`; ``due_at`` epoch ms); once the
last chord is played the room finishes after its grace period.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rooms.errors import RoomError
from rooms.practice import Pass, Practice
from rooms.room import Room
from rooms.wait_mode import WaitScorer
from server.realtime.timers import FinishTimers, now_ms
from server.services.schemas import LoopEventIn, TempoEventIn

if TYPE_CHECKING:
    from server.realtime.room_service import RoomService

log = logging.getLogger("tutti.practice")


class PracticeRunner:
    """The practice events and loop passes of a :class:`RoomService` (see module)."""

    def __init__(self, service: RoomService) -> None:
        self.service = service
        self.timers = FinishTimers(service.tasks)

    async def tempo(self, sid: str, msg: TempoEventIn) -> dict[str, Any]:
        """``room:tempo`` (host, before the start) → ``{"room": state}``.

        Raises ``RoomError``: ``unknown_room`` and :meth:`rooms.room.Room.set_practice`'s.
        """
        return await self._set(
            sid, msg.room_id, lambda p: Practice(msg.tempo_pct, p.loop, p.ladder, p.wait)
        )

    async def loop(self, sid: str, msg: LoopEventIn) -> dict[str, Any]:
        """``room:loop`` (host, before the start) → ``{"room": state}``.

        Raises ``RoomError``: ``unknown_room``, ``invalid_ladder`` and
        :meth:`rooms.room.Room.set_practice`'s (``invalid_bars``, ``invalid_repeats``…).
        """
        loop = msg.to_loop()
        ladder = None if msg.ladder is None else msg.ladder.to_ladder()
        # Wait mode stays: a loop in a wait-mode room is a practice_conflict, not a silent switch.
        return await self._set(
            sid, msg.room_id, lambda p: Practice(p.tempo_pct, loop, ladder, p.wait)
        )

    async def _set(self, sid: str, room_id: str, change) -> dict[str, Any]:
        user_id = self.service.connections.require(sid).user_id
        room, _ = await self.service._change(
            room_id, lambda room: room.set_practice(user_id, change(room.practice))
        )
        await self.service._publish_state(room)
        return {"room": room.state(now_ms())}

    def start(self, room: Room) -> None:
        """``room`` started here: announce its first pass and time the next; in wait mode,
        announce where it waits (``room:wait``) now and after every chord played."""
        for user_id, scorer in (room.waiting or {}).items():
            scorer.listeners.append(lambda s, u=user_id: self._chord_played(room, u, s))
            self.service.tasks.spawn(self._announce_wait(room, user_id, scorer))
        if room.loop_run is None:
            return
        first = room.loop_run.current
        self.service.tasks.spawn(self._announce(room, None, first))
        self._schedule(room)

    def stop(self, room_id: str) -> None:
        """The room finished or vanished: no more passes."""
        self.timers.cancel(room_id)

    def _schedule(self, room: Room) -> None:
        due = room.pass_due_ms()
        if due is not None:
            self.timers.schedule(room.room_id, due, lambda: self._advance(room.room_id))

    async def _advance(self, room_id: str) -> None:
        try:
            room, previous = await self.service._lookup(room_id), None
            if room.loop_run is None or room.is_finished:
                return
            previous = room.loop_run.current
            room, nxt = await self.service._change(room_id, lambda r: r.advance_pass(now_ms()))
        except RoomError:  # the room is gone meanwhile
            return
        await self._announce(room, previous, nxt)
        await self.service.partners.next_pass(room)
        self._schedule(room)
        log.info("room %s: pass %s over, next %s", room_id, previous.index, nxt and nxt.index)

    async def _announce(self, room: Room, previous: Pass | None, nxt: Pass | None) -> None:
        run = room.loop_run
        assert run is not None
        done = None
        if previous is not None:
            accuracy = {u: r["accuracy"] for u, r in (previous.results or {}).items()}
            done = {**_head(previous), "accuracy": accuracy}
        payload = {
            "room_id": room.room_id,
            "loop": {"from_bar": run.section.from_bar, "to_bar": run.section.to_bar},
            "previous": done,
            "next": None if nxt is None else {**nxt.to_dict(), "clicks": run.clicks(nxt)},
        }
        await self.service.broadcast.emit("room:pass", payload, room.room_id)

    def _chord_played(self, room: Room, user_id: str, scorer: WaitScorer) -> None:
        self.service.tasks.spawn(self._announce_wait(room, user_id, scorer))
        if room.finish_due_ms() is not None:  # the last chord: the room ends after its grace
            self.service._schedule_finish_check(room)

    async def _announce_wait(self, room: Room, user_id: str, scorer: WaitScorer) -> None:
        if room.is_finished or room.start_at_ms is None:
            return
        payload = {"room_id": room.room_id, "user_id": user_id, **scorer.position()}
        if payload["due_ms"] is not None:
            payload["due_at"] = round(room.start_at_ms + payload["due_ms"], 1)
        await self.service.broadcast.emit("room:wait", payload, room.room_id)


def _head(p: Pass) -> dict[str, Any]:
    return {"pass": p.index, "tempo_pct": p.tempo_pct, "tempo_bpm": round(p.tempo_bpm, 3)}
