"""The room manager: connections, rooms, timers, fan-out and saving finished rooms.

Data flows one way: a validated event comes in from :mod:`server.realtime.events`, the
:class:`rooms.room.Room` decides, and the manager fans the outcome out over
Socket.IO and saves finished rooms. Nothing in here scores or judges.

**Several processes** (``directory``: a :class:`server.realtime.room_directory.RoomDirectory`,
with ``--redis-url``): the room's record lives in Redis and ``self.rooms``
holds this process's replicas. Every change (join, leave, start) runs under
the room's Redis lock on a replica refreshed from the record, then writes
the record back and tells the other processes to refresh theirs. Notes are
scored by the process the player is connected to; note sequence numbers come
from Redis. Finishing: every process with the room started runs the finish
timer (waiting for the latest due time any process reported); whoever first
claims ``finishing`` asks the others for their players' partial outcomes,
merges them (:meth:`rooms.room.Room.finish`), saves the session once, and
sends the ``room:finished`` payload to the other processes, each of which
delivers it to its own members. Limits: a member's RTT in ``room:state`` is
the one it had when it last changed the record; the players of a process
that dies are scored as silent after a 2 s wait for their partials; a process
that stops (``SIGTERM``) finishes only the rooms whose present players are
all its own (the others carry on elsewhere; its players leave them).

**Recovery** (:mod:`server.realtime.recovery`): every room event a member must not
miss goes through :meth:`RoomManager._emit_room`, which logs it in the
room's stream and relays it with its ``epoch``/``offset``; ``room:join``
with ``recover`` answers the events missed since (or ``recovered: false``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import socketio
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms import admission
from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.room import PlayerPartial, Room, RoomSettings
from server.realtime.broadcast import RoomBroadcast
from server.realtime.connections import Connection, Connections
from server.realtime.presence import PresenceService
from server.realtime.recovery import LocalStreams, RedisStreams
from server.realtime.room_directory import RoomDirectory
from server.realtime.saving import finished_payload, save_finished
from server.realtime.timers import FinishTimers, ScoreThrottle, Tasks, now_ms
from server.services.limits_counter import record_rejection
from server.services.pieces import PieceLibrary
from server.services.schemas import RoomCreateEvent, RoomJoinEvent
from server.services.sync import SyncService, user_room

log = logging.getLogger("tutti.rooms")

FINISHED_RETENTION_S = 60.0  # finished rooms answer "room_finished" this long, then vanish
RTT_PUBLISH_MIN_S = 2.0  # at most one room:state per room this often for RTT changes alone
REDIS_ERRORS = (RedisError, OSError)
GATHER_TIMEOUT_S = 2.0  # how long the finishing process waits for the others' partials
# A player's due time (predicted end) is written to Redis with each score:update only when it
# moved this much, or this long after the last write (so a Redis restart is repaired soon).
DUE_MIN_CHANGE_MS = 100.0
DUE_REFRESH_S = 2.0


def _status(room: Room, role: str) -> str:
    """A member's presence status: listening (spectator), practicing (started), idle."""
    if role == "spectator":
        return "listening"
    return "idle" if room.start_at_ms is None else "practicing"


class RoomManager:
    """Owns every room of this process and the connections in them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        sessionmaker: async_sessionmaker[AsyncSession],
        pieces: PieceLibrary,
        *,
        room_settings: RoomSettings,
        score_interval_ms: float = 250.0,
        presence: PresenceService | None = None,
        sync: SyncService | None = None,
        directory: RoomDirectory | None = None,
        streams: LocalStreams | RedisStreams | None = None,
    ) -> None:
        self.sio = sio
        self.sessionmaker = sessionmaker
        self.pieces = pieces
        self.room_settings = room_settings
        self.presence = presence or PresenceService()
        self.sync = sync
        self.connections = Connections()
        self.rooms: dict[str, Room] = {}
        self._room_sids: dict[str, dict[str, str]] = {}  # room -> user -> sid
        self._state_published: dict[str, float] = {}
        self.tasks = Tasks()
        self.timers = FinishTimers(self.tasks)
        self.scores = ScoreThrottle(score_interval_ms, self.tasks)
        self.directory = directory
        self._nodes: dict[str, dict[str, str]] = {}  # room -> user -> node (cluster)
        self._due_written: dict[str, tuple[float, float]] = {}  # room -> (due ms, monotonic s)
        # Recovery streams (server/realtime/recovery.py): in Redis with a directory, else here.
        if streams is None:
            streams = RedisStreams(directory.redis) if directory is not None else LocalStreams()
        self.streams = streams
        self.broadcast = RoomBroadcast(sio, streams)
        self.metrics: Any = None  # server.observability.metrics.Metrics, set by the app factory

    async def start_cluster(self) -> None:
        """Listen to the other processes' room control messages (with a directory)."""
        if self.directory is not None:
            await self.directory.start(self._on_control)

    # -- connections ---------------------------------------------------------------

    async def connect(self, connection: Connection) -> None:
        self.connections[connection.sid] = connection
        # Every device of a user shares a Socket.IO room: pokes and presence reach them all.
        await self.sio.enter_room(connection.sid, user_room(connection.user_id))
        await self.presence.device_connected(connection)

    async def disconnect(self, sid: str) -> None:
        """A connection dropped: it leaves every room it was in."""
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        for room_id in list(connection.rooms):
            await self._leave(connection, room_id)
        await self.presence.device_disconnected(connection)
        # A room whose creator never joined it would otherwise linger forever.
        for room_id, room in list(self.rooms.items()):
            if room.host == connection.user_id and not room.members and room.start_at_ms is None:
                self._drop_room(room_id)

    def clock(self, sid: str, rtt_ms: float | None) -> None:
        """Keep the round-trip time a client reports from its clock exchanges (ms)."""
        connection = self._connection(sid)
        if rtt_ms is None:
            return
        previous = connection.rtt_ms
        connection.rtt_ms = rtt_ms
        for room_id in connection.rooms:
            room = self.rooms[room_id]
            room.set_rtt(connection.user_id, rtt_ms)
            changed = previous is None or abs(previous - rtt_ms) >= 5.0
            recent = time.monotonic() - self._state_published.get(room_id, 0.0)
            if changed and recent >= RTT_PUBLISH_MIN_S:
                self.tasks.spawn(self._publish_state(room))

    # -- room lifecycle --------------------------------------------------------------

    async def create(self, sid: str, msg: RoomCreateEvent) -> dict[str, Any]:
        connection = self._connection(sid)
        piece = None
        if msg.piece_id is not None:
            piece = await self.pieces.get(msg.piece_id)
            if piece is None:
                raise RoomError("unknown_piece", f"no piece with id {msg.piece_id!r}")
        room_id = uuid.uuid4().hex[:12]
        room = Room(
            room_id,
            name=msg.name or (piece.title if piece is not None else "Free jam"),
            mode=msg.mode,
            host_user_id=connection.user_id,
            piece=piece,
            piece_id=msg.piece_id,
            tempo_bpm=msg.tempo_bpm,
            count_in_beats=msg.count_in_beats,
            settings=self.room_settings,
            created_at_ms=int(now_ms()),
            invite_code=admission.new_invite_code() if msg.private else None,
        )
        self.rooms[room_id] = room
        self._room_sids[room_id] = {}
        if self.directory is not None:
            self._nodes[room_id] = {}
            try:
                await self._store(room)
            except REDIS_ERRORS as exc:
                log.warning("room %s: Redis unavailable (%s); local only", room_id, exc)
        log.info("room %s created by %s (%s)", room_id, connection.user_id, msg.mode)
        answer: dict[str, Any] = {"room": room.state(now_ms())}
        if room.invite_code is not None:
            answer["invite_code"] = room.invite_code
        return answer

    async def join(self, sid: str, msg: RoomJoinEvent) -> dict[str, Any]:
        connection = self._connection(sid)

        def join(room: Room):
            try:
                admission.admit(room, connection.user_id, msg.role, msg.invite)
            except RoomError as exc:
                record_rejection(admission.REJECTION_KIND[exc.code])
                raise
            if connection.user_id in self._room_sids.get(room.room_id, {}):
                raise RoomError(
                    "already_joined", "you are already in this room (from another device?)"
                )
            if self.directory is not None:
                node = self._nodes[room.room_id].get(connection.user_id)
                if connection.user_id in room.members and node != self.directory.node_id:
                    # The newest connection owns the membership: the user's old process
                    # died (or the user moved); the player keeps the part and the scoring.
                    room.leave(connection.user_id, int(now_ms()))
            member = room.join(
                connection.user_id,
                connection.display_name,
                role=msg.role,
                part=msg.part,
                instrument=msg.instrument,
                now_ms=int(now_ms()),
            )
            if connection.rtt_ms is not None:
                member.rtt_ms = connection.rtt_ms
            if self.directory is not None:
                self._nodes[room.room_id][connection.user_id] = self.directory.node_id
            return member

        room, member = await self._change(msg.room_id, join)
        if self.directory is not None and member.role == "player" and room.start_at_ms is not None:
            # Back after this player's process stopped: its scoring so far comes along.
            with contextlib.suppress(*REDIS_ERRORS):
                for partial in await self.directory.handed_off(room.room_id):
                    if partial["user_id"] == connection.user_id:
                        room.absorb(PlayerPartial.from_dict(partial))
        self._room_sids[room.room_id][connection.user_id] = sid
        connection.rooms.add(room.room_id)
        await self.sio.enter_room(sid, room.room_id)
        missed = None
        if msg.recover is not None:  # read after entering: nothing falls in between
            missed = await self.broadcast.missed(room.room_id, connection.user_id, msg.recover)
        await self.presence.device_changed(connection, room.room_id, _status(room, member.role))
        await self._publish_state(room)
        answer: dict[str, Any] = {"room": room.state(now_ms())}
        if msg.recover is not None:
            answer["recovered"] = missed is not None
            answer["missed"] = missed or []
        return answer

    async def leave(self, sid: str, room_id: str) -> dict[str, Any]:
        connection = self._connection(sid)
        room = await self._get_room(room_id)
        if room_id not in connection.rooms:
            raise RoomError("not_in_room", "you are not in this room")
        await self._leave(connection, room_id)
        return {"room_id": room_id, "left": True, "phase": room.phase(now_ms())}

    async def _leave(self, connection: Connection, room_id: str) -> None:
        room = self.rooms.get(room_id)
        connection.rooms.discard(room_id)
        if room is None:
            return
        self._room_sids[room_id].pop(connection.user_id, None)
        await self.sio.leave_room(connection.sid, room_id)
        if connection.sid in self.connections:
            await self.presence.device_changed(connection, None, "idle")
        if connection.user_id not in room.members and self.directory is None:
            return
        if (
            self.directory is not None
            and room.start_at_ms is not None
            and not room.is_finished
            and any(e.user_id == connection.user_id for e in room.recording.events)
        ):  # the player may come back on another process: its scoring goes along
            await self._hand_off(room)

        def leave(room: Room) -> bool:
            if connection.user_id not in room.members:
                return False
            if self.directory is not None and (
                self._nodes[room.room_id].get(connection.user_id) != self.directory.node_id
            ):
                return False  # the user has joined again on another process meanwhile
            return room.leave(connection.user_id, int(now_ms()))

        try:
            room, all_left = await self._change(room_id, leave)
        except RoomError:  # the room is gone meanwhile (cluster)
            return
        if all_left:
            await self._finish(room, "all_left")
        elif not room.is_finished:
            if not room.members and room.start_at_ms is None:
                self._drop_room(room_id)
            else:
                await self._publish_state(room)

    async def start(self, sid: str, room_id: str) -> dict[str, Any]:
        connection = self._connection(sid)
        room, start_at = await self._change(
            room_id, lambda room: room.start(connection.user_id, int(now_ms()))
        )
        parts = {p: u for p, u in room.parts_taken().items() if u in room.members}
        await self._emit_room(
            "room:started",
            {"room_id": room_id, "start_at": start_at, "tempo_bpm": room.tempo_bpm, "parts": parts},
            room_id,
        )
        for user_id, member_sid in self._room_sids[room_id].items():
            member = self.connections.get(member_sid)
            if member is not None:
                status = _status(room, room.members[user_id].role)
                await self.presence.device_changed(member, room_id, status)
        await self._publish_state(room)
        if self.directory is not None and self._local_players(room):
            with contextlib.suppress(*REDIS_ERRORS):
                await self.directory.set_due(room_id, room.finish_due_ms() or 0.0)
        self._schedule_finish_check(room)
        log.info("room %s starts at %d", room_id, start_at)
        return {"room_id": room_id, "start_at": start_at}

    async def end(self, sid: str, room_id: str) -> dict[str, Any]:
        connection = self._connection(sid)
        room = await self._get_room(room_id, fresh=True)
        if connection.user_id != room.host:
            raise RoomError("not_host", "only the host can end the room")
        if room.start_at_ms is None:
            raise RoomError("not_started", "the room has not started; leave it instead")
        session_id = await self._finish(room, "host_ended")
        return {"room_id": room_id, "session_id": session_id}

    # -- notes -------------------------------------------------------------------------

    async def notes(self, sid: str, room_id: str, events: list[NoteEvent]) -> dict[str, Any]:
        received = time.perf_counter()
        connection = self._connection(sid)
        room = self._room(room_id)
        if room.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if self._room_sids[room_id].get(connection.user_id) != sid:
            raise RoomError(
                "not_in_room", "join the room from this connection before sending notes"
            )
        if self.directory is not None:
            if room.start_at_ms is None:  # the start's control message may be under way
                room = await self._refresh(room_id)
            try:
                last = await self.directory.next_seqs(room_id, len(events), room.seq)
                room.seq = last - len(events)  # no await between this and accept()
            except REDIS_ERRORS as exc:
                log.warning("room %s: note sequence from Redis failed (%s)", room_id, exc)
        scoring = time.perf_counter()
        recorded = room.accept(connection.user_id, events, now_ms())
        scored = time.perf_counter()
        part = recorded[0].part
        relay = [
            {"type": e.type, "pitch": e.pitch, "velocity": e.velocity, "t": e.t_ms, "seq": e.seq}
            for e in recorded
        ]
        if len(relay) == 1:
            payload = {"room_id": room_id, "user_id": connection.user_id, "part": part, **relay[0]}
            await self._emit_room("note", payload, room_id, skip_sid=sid)
        else:
            payload = {
                "room_id": room_id,
                "user_id": connection.user_id,
                "part": part,
                "events": relay,
            }
            await self._emit_room("notes", payload, room_id, skip_sid=sid)
        if self.metrics is not None:
            self.metrics.note_relayed(len(relay), received, scoring, scored, time.perf_counter())
        self.scores.schedule(
            room_id, connection.user_id, lambda: self._send_score_update(room, connection.user_id)
        )
        return {"accepted": len(relay), "seq": recorded[-1].seq}

    async def _send_score_update(self, room: Room, user_id: str) -> None:
        if room.is_finished or room.room_id not in self.rooms:
            return
        if self.directory is not None:
            await self._share_due(room)
        result = room.live_result(user_id)
        if result is not None:
            payload = {"room_id": room.room_id, "user_id": user_id, **result}
            await self._emit_room("score:update", payload, room.room_id)

    async def _share_due(self, room: Room) -> None:
        """Cluster: tell the others when this process's players' piece is over.

        Skipped when it moved less than ``DUE_MIN_CHANGE_MS`` since the last
        write, less than ``DUE_REFRESH_S`` ago: a score:update comes every
        250 ms per player and the due time rarely moves, so most writes would
        repeat the last (one Redis round trip each; the relay benchmark's
        profile of two processes showed them at 7 %). The finish timer writes
        its own fresh value before deciding.
        """
        assert self.directory is not None
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

    def _schedule_finish_check(self, room: Room, due: float | None = None) -> None:
        due = due if due is not None else room.finish_due_ms()
        if due is None:
            return
        self.timers.schedule(room.room_id, due, lambda: self._finish_check(room))

    async def _finish_check(self, room: Room) -> None:
        if room.is_finished:
            return
        due = room.finish_due_ms()
        if self.directory is not None and due is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                if self._local_players(room):
                    await self.directory.set_due(room.room_id, due)
                due = max(due, await self.directory.latest_due(room.room_id) or 0.0)
        if due is not None and due - now_ms() > 5.0:  # a slow player pushed the end back
            self._schedule_finish_check(room, due)
            return
        await self._finish(room, "piece_ended")

    async def _finish(self, room: Room, reason: str) -> str:
        """Close the room, save it once, tell everyone. Returns the session id."""
        if room.finished is not None:
            return room.finished.session_id
        if self.directory is not None:
            try:
                return await self._finish_cluster(room, reason)
            except REDIS_ERRORS as exc:
                if room.finished is not None:  # saved; only telling the others failed
                    return room.finished.session_id
                log.warning("room %s: Redis unavailable (%s); finished here", room.room_id, exc)
        self.timers.cancel(room.room_id)
        finished = room.finish(reason, int(now_ms()), uuid.uuid4().hex)
        await save_finished(self.sessionmaker, finished)
        payload = finished_payload(finished)
        await self._emit_room("room:finished", payload, room.room_id)
        await self._publish_state(room)
        log.info("room %s finished (%s), session %s", room.room_id, reason, finished.session_id)
        if self.sync is not None:
            await self.sync.poke(p.user_id for p in finished.players)
        await self._release_members(room)
        return finished.session_id

    async def _finish_cluster(self, room: Room, reason: str) -> str:
        """Finish a shared room: claim it, gather every process's partials, save once."""
        directory = self.directory
        assert directory is not None
        room_id = room.room_id
        session_id = uuid.uuid4().hex
        if await directory.claim_finish(room_id, session_id) is None:
            # Another process finishes it: its room:finished reaches our members.
            other = await directory.finishing_session(room_id)
            log.info(
                "room %s (%s): finished by another process, session %s", room_id, reason, other
            )
            payload = await directory.wait_finished(room_id, GATHER_TIMEOUT_S + 10.0)
            return payload["session_id"] if payload is not None else (other or "")
        self.timers.cancel(room_id)
        ended = int(now_ms())
        room.closed_session_id = session_id  # no more notes here
        with contextlib.suppress(RoomError):
            room = await self._refresh(room_id)
        nodes = set(self._nodes.get(room_id, {}).values()) - {directory.node_id}
        await directory.publish(room_id, "collect", s=session_id, e=ended)
        remote = await directory.gather_partials(room_id, session_id, nodes, GATHER_TIMEOUT_S)
        remote += await directory.handed_off(room_id)
        finished = room.finish(
            reason, ended, session_id, remote=[PlayerPartial.from_dict(p) for p in remote]
        )
        await save_finished(self.sessionmaker, finished)
        payload = finished_payload(finished)
        payload = await self.broadcast.logged(room_id, "room:finished", payload)
        await directory.set_finished(room_id, payload)
        await directory.publish(room_id, "finished", p=payload)
        await self._deliver_finished(room, payload)
        log.info("room %s finished (%s), session %s", room_id, reason, session_id)
        if self.sync is not None:
            await self.sync.poke(p.user_id for p in finished.players)
        return session_id

    async def _deliver_finished(self, room: Room, payload: dict[str, Any]) -> None:
        """Cluster: send room:finished and the last room:state to this process's members."""
        state = room.state(now_ms())
        for sid in list(self._room_sids.get(room.room_id, {}).values()):
            await self.sio.emit("room:finished", payload, to=sid)
            await self.sio.emit("room:state", state, to=sid)
        await self._release_members(room)

    async def _release_members(self, room: Room) -> None:
        for user_id, sid in list(self._room_sids.get(room.room_id, {}).items()):
            await self.sio.leave_room(sid, room.room_id)
            connection = self.connections.get(sid)
            if connection is not None:
                connection.rooms.discard(room.room_id)
                await self.presence.device_changed(connection, None, "idle")
            self._room_sids[room.room_id].pop(user_id, None)
        asyncio.get_running_loop().call_later(
            FINISHED_RETENTION_S, lambda: self._drop_room(room.room_id)
        )

    async def finish_all(self) -> None:
        """Server shutdown: save every started room as it stands.

        With several processes, only rooms whose present players are all
        connected here; the others go on without this process's players.
        """
        for room in list(self.rooms.values()):
            if room.start_at_ms is not None and not room.is_finished:
                if self.directory is not None:
                    nodes = self._nodes.get(room.room_id, {})
                    present = room.players_present()
                    if not present or any(nodes.get(u) != self.directory.node_id for u in present):
                        await self._hand_off(room)
                        continue
                try:
                    await self._finish(room, "server_shutdown")
                except Exception:
                    log.exception("could not save room %s at shutdown", room.room_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _publish_state(self, room: Room) -> None:
        self._state_published[room.room_id] = time.monotonic()
        await self._emit_room("room:state", room.state(now_ms()), room.room_id)

    async def _emit_room(
        self, event: str, payload: dict[str, Any], room_id: str, skip_sid: str | None = None
    ) -> None:
        """Log ``event`` in the room's recovery stream, then emit it with its offset."""
        await self.broadcast.emit(event, payload, room_id, skip_sid)

    async def _hand_off(self, room: Room) -> None:
        """Shutdown: leave our players' partials in Redis for the process that finishes."""
        assert self.directory is not None
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

    async def _change(self, room_id: str, change):
        """Apply ``change(room)`` (may raise RoomError, changing nothing); ``(room, result)``.

        With a directory: under the room's Redis lock, on a replica refreshed
        from the record; the record is written back and the others told.
        """
        if self.directory is None:
            room = self._room(room_id)
            return room, change(room)
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
        assert self.directory is not None
        await self.directory.store(
            room.room_id, {"room": room.snapshot(), "nodes": self._nodes.get(room.room_id, {})}
        )

    async def _get_room(self, room_id: str, *, fresh: bool = False) -> Room:
        if self.directory is None or (room_id in self.rooms and not fresh):
            return self._room(room_id)
        try:
            return await self._refresh(room_id)
        except REDIS_ERRORS:
            return self._room(room_id)

    async def _refresh(self, room_id: str) -> Room:
        """Cluster: this process's replica of ``room_id``, brought up to the record."""
        assert self.directory is not None
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
                status = _status(room, room.members[user_id].role)
                await self.presence.device_changed(member, room.room_id, status)
        if self._local_players(room) and room.finish_due_ms() is not None:
            assert self.directory is not None
            await self.directory.set_due(room.room_id, room.finish_due_ms() or 0.0)
        self._schedule_finish_check(room)

    async def _on_control(self, msg: dict[str, Any]) -> None:
        """A control message from another process (see :mod:`server.realtime.room_directory`)."""
        assert self.directory is not None
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
                mine = {e.user_id for e in room.recording.events} | set(self._local_players(room))
                partials = [p.to_dict() for p in room.partials(msg["e"], sorted(mine))]
            await self.directory.push_partials(room_id, msg["s"], partials)
        elif kind == "finished" and room is not None and room.finished is None:
            room.closed_session_id = msg["p"]["session_id"]
            self.timers.cancel(room_id)
            await self._deliver_finished(room, msg["p"])

    def _drop_room(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)
        self._nodes.pop(room_id, None)
        self._room_sids.pop(room_id, None)
        self._state_published.pop(room_id, None)
        self._due_written.pop(room_id, None)
        self.broadcast.drop(room_id)
        self.scores.forget(room_id)

    def is_private(self, room_id: str) -> bool:
        """Whether ``room_id`` (a room this process knows) needs an invite to join."""
        room = self.rooms.get(room_id)
        return room is not None and room.is_private

    def _connection(self, sid: str) -> Connection:
        return self.connections.require(sid)

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise RoomError("unknown_room", f"no room with id {room_id!r}")
        return room
