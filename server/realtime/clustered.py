"""Rooms shared by several processes through Redis: :class:`ClusteredRoomService`.

The room's record lives in Redis (:class:`server.realtime.room_directory.RoomDirectory`)
and ``self.rooms`` holds this process's replicas. Every change (join, leave,
start) runs under the room's Redis lock on a replica refreshed from the
record, then writes the record back and tells the other processes to refresh
theirs. Notes are scored by the process the player is connected to; note
sequence numbers come from Redis.

Finishing (the one sequence of :meth:`RoomService.finish`, with the hooks
below): every process with the room started runs the finish timer (waiting
for the latest due time any process reported); whoever first claims
``finishing`` asks the others for their players' partial outcomes, merges
them (:meth:`rooms.room.Room.finish`), saves the session once, and sends the
``room:finished`` payload to the other processes, each of which delivers it
to its own members.

A process that dies (``SIGKILL``) loses no score: every accepted note is in
the room's note log (:mod:`server.realtime.recovery`), and the process that
takes a player over (:meth:`_returned`) or finishes the room
(:meth:`_partials_elsewhere`, after a 2 s wait for the partials) rebuilds
the player's scorer from it (:meth:`rooms.room.Room.rebuild`). If the
finishing process dies between its claim and its ``room:finished``, another
takes the finish over after ``FINISH_WAIT_S`` under the same session id.

Limits: a member's RTT in ``room:state`` is the one it had when it last
changed the record; a process that stops (``SIGTERM``)
finishes only the rooms whose present players are all its own (the others
carry on elsewhere; its players' partials are handed off). Redis away: the
process serves its rooms alone (a warning is logged).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rooms.errors import RoomError
from rooms.presence import status_of
from rooms.room import Member, PlayerPartial, Room
from server.realtime.broadcast import REDIS_ERRORS
from server.realtime.room_directory import RoomDirectory
from server.realtime.room_service import RoomService
from server.realtime.timers import now_ms

log = logging.getLogger("tutti.rooms")

GATHER_TIMEOUT_S = 2.0  # how long the finishing process waits for the others' partials
# How long the others wait for the finishing process's room:finished before taking over.
FINISH_WAIT_S = GATHER_TIMEOUT_S + 10.0
# A player's due time (predicted end) is written to Redis with each score:update only when it
# moved this much, or this long after the last write (so a Redis restart is repaired soon).
DUE_MIN_CHANGE_MS = 100.0
DUE_REFRESH_S = 2.0
T = TypeVar("T")


class ClusteredRoomService(RoomService):
    """:class:`RoomService` with rooms shared through ``directory`` (see module)."""

    def __init__(self, *args: Any, directory: RoomDirectory, **kwargs: Any) -> None:
        kwargs.setdefault("streams", directory.streams())
        super().__init__(*args, **kwargs)
        self.directory = directory
        self._nodes: dict[str, dict[str, str]] = {}  # room -> user -> node
        self._due_written: dict[str, tuple[float, float]] = {}  # room -> (due ms, monotonic s)
        self._finishing_here: dict[str, str] = {}  # room -> session id this process saves
        self._reasons: dict[str, str] = {}  # room -> why it finishes (for a takeover)
        if hasattr(self.broadcast.streams, "on_log_lost"):
            self.broadcast.streams.on_log_lost = self._log_lost

    async def start_cluster(self) -> None:
        """Listen to the other processes' room control messages."""
        await self.directory.start(self._on_control)

    # -- the record ------------------------------------------------------------------------

    async def _change(self, room_id: str, change: Callable[[Room], T]) -> tuple[Room, T]:
        """Under the room's Redis lock, on a replica refreshed from the record; the
        record is written back and the others told."""
        done: list[Any] = []
        try:
            async with self.directory.lock(room_id):
                room = await self._refresh(room_id)
                done.append(change(room))
                await self._store(room)
            await self.directory.publish(room_id, "changed")
            return room, done[0]
        except REDIS_ERRORS as exc:  # Redis away: this process serves the room alone
            log.warning("room %s: Redis unavailable (%s); served by this process", room_id, exc)
            room = self._room(room_id)
            return room, done[0] if done else change(room)

    async def _store(self, room: Room) -> None:
        await self.directory.store(
            room.room_id, {"room": room.snapshot(), "nodes": self._nodes.get(room.room_id, {})}
        )

    async def _lookup(self, room_id: str, *, fresh: bool = False) -> Room:
        if room_id in self.rooms and not fresh:
            return self._room(room_id)
        try:
            return await self._refresh(room_id)
        except REDIS_ERRORS:
            return self._room(room_id)

    async def _refresh(self, room_id: str) -> Room:
        """This process's replica of ``room_id``, brought up to the record.

        Raises ``RoomError`` ``unknown_room``, ``unknown_piece``; Redis errors.
        """
        record = await self.directory.load(room_id)
        known = self.rooms.get(room_id)
        if record is None and known is not None and not known.is_finished:
            # Redis lost the record (restarted empty): put our replica back (the first
            # process to do so wins; the others adopt it).
            record = {"room": known.snapshot(), "nodes": self._nodes.get(room_id, {})}
            if not await self.directory.restore(room_id, record):
                record = await self.directory.load(room_id)
            else:
                log.warning("room %s: record lost from Redis; restored from this replica", room_id)
        if record is None:
            raise RoomError("unknown_room", f"no room with id {room_id!r}")
        snap = record["room"]
        room = self.rooms.get(room_id)
        started_before = room is not None and room.start_at_ms is not None
        if room is None:
            piece = None
            if snap["piece_id"] is not None:
                piece = await self.pieces.get(snap["piece_id"])
                if piece is None:
                    raise RoomError("unknown_piece", f"no piece with id {snap['piece_id']!r}")
            room = self.rooms.get(room_id)  # created by a concurrent refresh meanwhile?
            if room is None:
                room = Room.from_snapshot(snap, piece, self.room_settings)
                self.rooms[room_id] = room
                self._room_sids[room_id] = {}
        else:
            room.apply_snapshot(snap)
        self._nodes[room_id] = record["nodes"]
        if not started_before and room.start_at_ms is not None and room_id in self._room_sids:
            await self._started_elsewhere(room)
        return room

    async def _started_elsewhere(self, room: Room) -> None:
        """Another process started the room: presence of our members, the finish timer."""
        for user_id, member_sid in self._room_sids[room.room_id].items():
            member = self.connections.get(member_sid)
            if member is not None and user_id in room.members:
                status = status_of(room, room.members[user_id].role)
                await self.presence.device_changed(member, room.room_id, status)
        if self._local_players(room) and room.finish_due_ms() is not None:
            await self.directory.set_due(room.room_id, room.finish_due_ms() or 0.0)
        self._schedule_finish_check(room)

    # -- lifecycle hooks -------------------------------------------------------------------

    async def _created(self, room: Room) -> None:
        self._nodes[room.room_id] = {}
        try:
            await self._store(room)
        except REDIS_ERRORS as exc:
            log.warning("room %s: Redis unavailable (%s); local only", room.room_id, exc)

    def _claim_seat(self, room: Room, user_id: str) -> None:
        node = self._nodes[room.room_id].get(user_id)
        if user_id in room.members and node != self.directory.node_id:
            # The newest connection owns the membership: the user's old process
            # died (or the user moved); the player keeps the part and the scoring.
            room.leave(user_id, int(now_ms()))

    def _seated(self, room: Room, user_id: str) -> None:
        self._nodes[room.room_id][user_id] = self.directory.node_id

    async def _returned(self, room: Room, member: Member) -> None:
        if member.role == "player" and room.start_at_ms is not None:
            # Back after this player's process stopped: its scoring so far comes along.
            with contextlib.suppress(*REDIS_ERRORS):
                for partial in await self.directory.handed_off(room.room_id):
                    if partial["user_id"] == member.user_id:
                        room.absorb(PlayerPartial.from_dict(partial))
            # Back after this player's process died (SIGKILL): the room's note log has
            # every note it had accepted.
            await self._rebuild(room, [member.user_id])

    async def _log_lost(self, room_id: str, data: dict[str, Any]) -> None:
        """The room's note log may lack our earlier notes (Redis lost it): put them back."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        logged = {e["seq"] for e in data.get("events", (data,))}
        earlier = [e for e in room.recording.events if e.seq not in logged]
        if earlier:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.broadcast.streams.log_notes(room_id, earlier)
                log.warning("room %s: %d notes put back into the note log", room_id, len(earlier))

    async def _rebuild(self, room: Room, user_ids: list[str], than: dict[str, int] | None = None):
        """Rebuild the scorers of ``user_ids`` from the room's note log where it holds
        notes of theirs this replica lacks (and more than ``than[user]`` events)."""
        streams = self.broadcast.streams
        if not hasattr(streams, "notes"):
            return
        try:
            log_events = await streams.notes(room.room_id)
        except REDIS_ERRORS as exc:
            log.warning("room %s: note log unreadable (%s)", room.room_id, exc)
            return
        counts: dict[str, int] = {}
        for event in log_events:
            counts[event.user_id] = counts.get(event.user_id, 0) + 1
        for user_id in user_ids:
            if counts.get(user_id, 0) <= (than or {}).get(user_id, -1):
                continue
            replayed = room.rebuild(user_id, log_events)
            if replayed:
                log.info(
                    "room %s: %d note events of %s replayed from the note log",
                    room.room_id,
                    replayed,
                    user_id,
                )

    def _holds_seat(self, room: Room, user_id: str) -> bool:
        # False when the user has joined again on another process meanwhile.
        return self._nodes[room.room_id].get(user_id) == self.directory.node_id

    async def _leaving(self, room: Room, user_id: str) -> bool:
        if (
            room.start_at_ms is not None
            and not room.is_finished
            and any(e.user_id == user_id for e in room.recording.events)
        ):  # the player may come back on another process: its scoring goes along
            await self._hand_off(room)
        return True  # the replica may be behind: the record decides

    async def _started(self, room: Room) -> None:
        if self._local_players(room):
            with contextlib.suppress(*REDIS_ERRORS):
                await self.directory.set_due(room.room_id, room.finish_due_ms() or 0.0)

    async def _number(self, room: Room, count: int) -> Room:
        if room.start_at_ms is None:  # the start's control message may be under way
            room = await self._refresh(room.room_id)
        try:
            last = await self.directory.next_seqs(room.room_id, count, room.seq)
            room.seq = last - count  # no await between this and accept()
        except REDIS_ERRORS as exc:
            log.warning("room %s: note sequence from Redis failed (%s)", room.room_id, exc)
        return room

    async def _scored(self, room: Room) -> None:
        """Tell the others when this process's players' piece is over.

        Skipped when it moved less than ``DUE_MIN_CHANGE_MS`` since the last
        write, less than ``DUE_REFRESH_S`` ago: a score:update comes every
        250 ms per player and the due time rarely moves, so most writes would
        repeat the last (one Redis round trip each; the relay benchmark's
        profile of two processes showed them at 7 %). The finish timer writes
        its own fresh value before deciding.
        """
        due = room.finish_due_ms()
        if due is None:
            return
        last = self._due_written.get(room.room_id)
        now = time.monotonic()
        if (
            last is not None
            and abs(due - last[0]) < DUE_MIN_CHANGE_MS
            and now - last[1] < DUE_REFRESH_S
        ):
            return
        with contextlib.suppress(*REDIS_ERRORS):
            await self.directory.set_due(room.room_id, due)
            self._due_written[room.room_id] = (due, now)

    # -- finishing -------------------------------------------------------------------------

    async def _finish_due(self, room: Room) -> float | None:
        due = room.finish_due_ms()
        if due is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                if self._local_players(room):
                    await self.directory.set_due(room.room_id, due)
                due = max(due, await self.directory.latest_due(room.room_id) or 0.0)
        return due

    async def _session_id(self, room: Room) -> str:
        """A new session id, or the one of a finish claimed ``FINISH_WAIT_S`` ago and never
        announced (its process died): saved under that id, the room is saved once."""
        with contextlib.suppress(*REDIS_ERRORS):
            age = await self.directory.claim_age_s(room.room_id)
            if age is not None and age >= FINISH_WAIT_S:
                other = await self.directory.finishing_session(room.room_id)
                if other:
                    return other
        return await super()._session_id(room)

    async def _claim_finish(self, room: Room, reason: str, session_id: str) -> str | None:
        room_id = room.room_id
        self._reasons[room_id] = reason
        if room_id in self._finishing_here:  # e.g. the stalled-finish timer meanwhile
            return self._finishing_here[room_id]
        try:
            if await self.directory.claim_finish(room_id, session_id) is not None:
                self._finishing_here[room_id] = session_id
                return None
            # Another process finishes it: its room:finished reaches our members.
            other = await self.directory.finishing_session(room_id)
            log.info(
                "room %s (%s): finished by another process, session %s", room_id, reason, other
            )
            payload = await self.directory.wait_finished(room_id, FINISH_WAIT_S)
            if payload is not None:
                return payload["session_id"]
            if not other or room.finished is not None:
                return other or ""
        except REDIS_ERRORS as exc:
            log.warning("room %s: Redis unavailable (%s); finished here", room_id, exc)
            self._finishing_here[room_id] = session_id
            return None
        # The finishing process went silent (it died between its claim and its
        # announcement): finish here, under its session id (see _session_id).
        log.warning("room %s: session %s not announced; finishing it here", room_id, other)
        return await self.finish(room, reason)

    async def _partials_elsewhere(
        self, room: Room, session_id: str, ended_ms: int
    ) -> list[PlayerPartial]:
        room_id = room.room_id
        room.closed_session_id = session_id  # no more notes here
        try:
            with contextlib.suppress(RoomError):
                await self._refresh(room_id)
            nodes = set(self._nodes.get(room_id, {}).values()) - {self.directory.node_id}
            why = self._reasons.get(room_id, "piece_ended")
            await self.directory.publish(room_id, "collect", s=session_id, e=ended_ms, why=why)
            remote = await self.directory.gather_partials(
                room_id, session_id, nodes, GATHER_TIMEOUT_S
            )
            remote += await self.directory.handed_off(room_id)
        except REDIS_ERRORS as exc:
            log.warning("room %s: Redis unavailable (%s); finished here", room_id, exc)
            return []
        partials = [PlayerPartial.from_dict(p) for p in remote]
        # A player whose process died without handing in partials: the note log has
        # what it had accepted (the replica scores it when the log has more events).
        best: dict[str, int] = {}
        for partial in partials:
            best[partial.user_id] = max(best.get(partial.user_id, 0), len(partial.events))
        await self._rebuild(room, [p[0] for p in room.snapshot()["players"]], best)
        return partials

    async def _announce_finished(self, room: Room, payload: dict[str, Any]) -> None:
        try:
            payload = await self.broadcast.logged(room.room_id, "room:finished", payload)
            await self.directory.set_finished(room.room_id, payload)
            await self.directory.publish(room.room_id, "finished", p=payload)
            await self.broadcast.streams.forget_notes(room.room_id)
        except REDIS_ERRORS as exc:  # saved; only telling the others failed
            log.warning("room %s: Redis unavailable (%s); finished here", room.room_id, exc)
        await self._deliver_finished(room, payload)

    async def _deliver_finished(self, room: Room, payload: dict[str, Any]) -> None:
        """Send room:finished and the last room:state to this process's members."""
        state = room.state(now_ms())
        for sid in list(self._room_sids.get(room.room_id, {}).values()):
            await self.sio.emit("room:finished", payload, to=sid)
            await self.sio.emit("room:state", state, to=sid)
        await self._release_members(room)

    async def _goes_on_elsewhere(self, room: Room) -> bool:
        nodes = self._nodes.get(room.room_id, {})
        present = room.players_present()
        if not present or any(nodes.get(u) != self.directory.node_id for u in present):
            await self._hand_off(room)
            return True
        return False

    async def _hand_off(self, room: Room) -> None:
        """Leave our players' partials in Redis for the process that finishes."""
        mine = {e.user_id for e in room.recording.events} | set(self._local_players(room))
        if not mine:
            return
        try:
            partials = room.partials(int(now_ms()), sorted(mine))
            await self.directory.hand_off(room.room_id, [p.to_dict() for p in partials])
            log.info("room %s: handed %d players' partials off", room.room_id, len(partials))
        except Exception:
            log.exception("could not hand room %s off", room.room_id)

    def _local_players(self, room: Room) -> list[str]:
        """Players of ``room`` connected to this process."""
        sids = self._room_sids.get(room.room_id, {})
        return [u for u in room.players_present() if u in sids]

    # -- the other processes ---------------------------------------------------------------

    async def _on_control(self, msg: dict[str, Any]) -> None:
        """A control message from another process (see :mod:`server.realtime.room_directory`)."""
        room_id, kind = msg["r"], msg["t"]
        room = self.rooms.get(room_id)
        if kind == "changed":
            if room is not None and not room.is_finished:
                await self._refresh(room_id)
                nodes = self._nodes.get(room_id, {})
                for user_id, sid in list(self._room_sids.get(room_id, {}).items()):
                    if nodes.get(user_id) != self.directory.node_id:  # moved to another process
                        self._room_sids[room_id].pop(user_id, None)
                        await self.sio.leave_room(sid, room_id)
                        connection = self.connections.get(sid)
                        if connection is not None:
                            connection.rooms.discard(room_id)
        elif kind == "collect":  # every process answers, so nobody is waited for in vain
            partials: list[dict] = []
            if room is not None and room.start_at_ms is not None:
                room.closed_session_id = msg["s"]
                self.timers.cancel(room_id)
                # Should the finishing process die before its room:finished, finish here
                # (the "finished" message cancels this).
                self.timers.schedule(
                    room_id,
                    now_ms() + FINISH_WAIT_S * 1000,
                    lambda: self._finish_stalled(room, msg.get("why", "piece_ended")),
                )
                mine = {e.user_id for e in room.recording.events} | set(self._local_players(room))
                partials = [p.to_dict() for p in room.partials(msg["e"], sorted(mine))]
            await self.directory.push_partials(room_id, msg["s"], partials)
        elif kind == "finished" and room is not None and room.finished is None:
            room.closed_session_id = msg["p"]["session_id"]
            self.timers.cancel(room_id)
            await self._deliver_finished(room, msg["p"])

    async def _finish_stalled(self, room: Room, reason: str) -> None:
        if room.finished is None and self.rooms.get(room.room_id) is room:
            log.warning("room %s: no room:finished from the finishing process", room.room_id)
            await self.finish(room, reason)

    def _drop_room(self, room_id: str) -> None:
        super()._drop_room(room_id)
        self._nodes.pop(room_id, None)
        self._due_written.pop(room_id, None)
        self._finishing_here.pop(room_id, None)
        self._reasons.pop(room_id, None)
