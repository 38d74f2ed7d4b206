"""The whole story of a room on one process: join, start, notes, finish, save.

Data flows one way: a validated event comes in from
:class:`server.realtime.namespace.TuttiNamespace`, the :class:`rooms.room.Room`
decides, and :class:`RoomService` tells the members (through the recovery
stream, :class:`server.realtime.broadcast.RoomBroadcast`) and saves finished
rooms. Nothing in here scores or judges. The note path:
:meth:`RoomService.notes` → :meth:`rooms.room.Room.accept` → relay + recovery
append → :class:`server.realtime.timers.ScoreThrottle` (``score:update``).

A room finishes (:meth:`RoomService.finish`, the one finish sequence) when
its piece ended (the finish timer), its host ended it, every player left, or
the server stops; the finished room is saved once and answers
``room_finished`` for 60 s, then vanishes.

The steps a cluster shares (``_change``, ``_claim_finish``…) are the hooks of
:class:`server.realtime.sharing.Sharing`, answered there for one process and
in :class:`server.realtime.clustered.ClusteredRoomService` through Redis.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms import admission
from rooms.errors import RoomError
from rooms.notes import NoteEvent
from rooms.presence import status_of
from rooms.room import Member, Room, RoomSettings
from server.realtime.broadcast import RoomBroadcast
from server.realtime.connections import Connection, Connections
from server.realtime.partners import Partners
from server.realtime.practice import PracticeRunner
from server.realtime.presence import PresenceService
from server.realtime.recovery import LocalStreams, RedisStreams
from server.realtime.relay import relay_notes
from server.realtime.saving import SessionSaver, announce_saved, finished_payload
from server.realtime.sharing import Sharing
from server.realtime.timers import FinishTimers, ReconnectGrace, ScoreThrottle, Tasks, now_ms
from server.services.limits_counter import record_rejection
from server.services.pieces import PieceLibrary
from server.services.schemas import RoomCreateEvent, RoomJoinEvent
from server.services.sync import SyncService, user_room

log = logging.getLogger("tutti.rooms")

FINISHED_RETENTION_S = 60.0  # finished rooms answer "room_finished" this long, then vanish
RTT_PUBLISH_MIN_S = 2.0  # at most one room:state per room this often for RTT changes alone


class RoomService(Sharing):
    """Every room of this process and the connections in them (see module)."""

    directory = None  # one process: no room directory (server.rest.health reads it)

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
        streams: LocalStreams | RedisStreams | None = None,
        saver: SessionSaver | None = None,
        reconnect_grace_s: float = 15.0,
    ) -> None:
        self.sio = sio
        self.sessionmaker = sessionmaker
        self.pieces = pieces
        self.room_settings = room_settings
        self.presence = presence or PresenceService()
        self.sync = sync
        self.connections = Connections()
        self.rooms: dict[str, Room] = {}
        self._room_sids: dict[str, dict[str, str]] = {}  # room -> user -> sid (this process)
        self._state_published: dict[str, float] = {}  # room -> monotonic s
        self.tasks = Tasks()
        self.timers = FinishTimers(self.tasks)
        self.scores = ScoreThrottle(score_interval_ms, self.tasks)
        self.away = ReconnectGrace(self.tasks, reconnect_grace_s)
        self.broadcast = RoomBroadcast(sio, streams or LocalStreams())
        self.metrics: Any = None  # server.observability.metrics.Metrics, set by the app factory
        self.saver = saver or SessionSaver(sessionmaker, None)
        self.saver.on_saved = functools.partial(announce_saved, sio)
        self.partners = Partners(self)  # computer partners (room:add_partner)
        self.practice = PracticeRunner(self)  # room:tempo, room:loop and loop passes

    async def start_cluster(self) -> None:
        """Join the other processes (nothing to join on one process)."""

    # -- connections ---------------------------------------------------------------

    def is_private(self, room_id: str) -> bool:
        """Whether ``room_id`` (a room this process knows) needs an invite to join."""
        room = self.rooms.get(room_id)
        return room is not None and room.is_private

    async def connect(self, connection: Connection) -> None:
        """A connection passed ``connect``: register it, tell presence."""
        self.connections[connection.sid] = connection
        # Every device of a user shares a Socket.IO room: pokes and presence reach them all.
        await self.sio.enter_room(connection.sid, user_room(connection.user_id))
        await self.presence.device_connected(connection)

    async def disconnect(self, sid: str) -> None:
        """A connection dropped: it leaves its rooms after the grace (``self.away``)."""
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        for room_id in list(connection.rooms):
            await self._leave(connection, room_id, dropped=True)
        await self.presence.device_disconnected(connection)
        # A room whose creator never joined it would otherwise linger forever.
        for room_id, room in list(self.rooms.items()):
            if room.host == connection.user_id and room.is_empty and room.start_at_ms is None:
                self._drop_room(room_id)

    def clock(self, sid: str, rtt_ms: float | None) -> None:
        """Keep the round-trip time a client reports from its clock exchanges (ms)."""
        connection = self.connections.require(sid)
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
        """A new room, hosted by the caller → ``{"room": state}`` (+ ``"invite_code"``).

        Raises ``RoomError`` (``unknown_piece``, and the rules of :class:`Room`).
        """
        connection = self.connections.require(sid)
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
            practice=msg.to_practice(),
        )
        self.rooms[room_id] = room
        self._room_sids[room_id] = {}
        await self._created(room)
        log.info("room %s created by %s (%s)", room_id, connection.user_id, msg.mode)
        answer: dict[str, Any] = {"room": room.state(now_ms())}
        if room.invite_code is not None:
            answer["invite_code"] = room.invite_code
        return answer

    async def join(self, sid: str, msg: RoomJoinEvent) -> dict[str, Any]:
        """Join (or rejoin) a room → ``{"room": state}``; with ``recover`` also
        ``"recovered"`` and ``"missed"`` (the events since, see :mod:`server.realtime.recovery`).

        Raises ``RoomError``: :func:`rooms.admission.admit`'s, ``already_joined``
        (from another device), and :meth:`Room.join`'s.
        """
        connection = self.connections.require(sid)
        user_id = connection.user_id

        was_away = self.away.is_away(msg.room_id, user_id)

        def join(room: Room) -> Member:
            try:
                admission.admit(room, user_id, msg.role, msg.invite)
            except RoomError as exc:
                record_rejection(admission.REJECTION_KIND[exc.code])
                raise
            if user_id in self._room_sids.get(room.room_id, {}):
                raise RoomError(
                    "already_joined", "you are already in this room (from another device?)"
                )
            if was_away and user_id in room.members:  # back within the grace period
                if msg.part not in (None, room.members[user_id].part):
                    raise RoomError("part_taken", "you already play another part here")
                return room.members[user_id]
            self._claim_seat(room, user_id)
            member = room.join(
                user_id,
                connection.display_name,
                role=msg.role,
                part=msg.part,
                instrument=msg.instrument,
                now_ms=int(now_ms()),
            )
            if connection.rtt_ms is not None:
                member.rtt_ms = connection.rtt_ms
            self._seated(room, user_id)
            return member

        room, member = await self._change(msg.room_id, join)
        if was_away:
            self.away.resume(room.room_id, user_id)
        else:
            await self._returned(room, member)
        self._room_sids[room.room_id][user_id] = sid
        connection.rooms.add(room.room_id)
        await self.sio.enter_room(sid, room.room_id)
        missed = None
        if msg.recover is not None:  # read after entering: nothing falls in between
            missed = await self.broadcast.missed(room.room_id, user_id, msg.recover)
        await self.presence.device_changed(connection, room.room_id, status_of(room, member.role))
        await self._publish_state(room)
        answer: dict[str, Any] = {"room": room.state(now_ms())}
        if msg.recover is not None:
            answer["recovered"] = missed is not None
            answer["missed"] = missed or []
        return answer

    async def leave(self, sid: str, room_id: str) -> dict[str, Any]:
        """Leave a room → ``{"room_id", "left": true, "phase"}``.

        Raises ``RoomError`` ``unknown_room``, ``not_in_room``.
        """
        connection = self.connections.require(sid)
        room = await self._lookup(room_id)
        if room_id not in connection.rooms:
            raise RoomError("not_in_room", "you are not in this room")
        await self._leave(connection, room_id)
        return {"room_id": room_id, "left": True, "phase": room.phase(now_ms())}

    async def _leave(self, connection: Connection, room_id: str, dropped: bool = False) -> None:
        room = self.rooms.get(room_id)
        connection.rooms.discard(room_id)
        if room is None:
            return
        user_id = connection.user_id
        self._room_sids[room_id].pop(user_id, None)
        await self.sio.leave_room(connection.sid, room_id)
        if connection.sid in self.connections:
            await self.presence.device_changed(connection, None, "idle")
        if not await self._leaving(room, user_id):
            return
        if dropped and self.away.grace_s > 0 and not room.is_finished:
            self.away.hold(room_id, user_id, lambda: self._release(room_id, user_id))
            return
        await self._release(room_id, user_id)

    async def _release(self, room_id: str, user_id: str) -> None:
        def leave(room: Room) -> bool:
            if user_id not in room.members or not self._holds_seat(room, user_id):
                return False
            return room.leave(user_id, int(now_ms()))

        try:
            room, all_left = await self._change(room_id, leave)
        except RoomError:  # the room is gone meanwhile (cluster)
            return
        if all_left:
            await self.finish(room, "all_left")
        elif not room.is_finished:
            if room.is_empty and room.start_at_ms is None:
                self._drop_room(room_id)
            else:
                await self._publish_state(room)

    async def start(self, sid: str, room_id: str) -> dict[str, Any]:
        """Start the count-in → ``{"room_id", "start_at"}`` (epoch ms); members get
        ``room:started {"room_id", "start_at", "tempo_bpm", "parts"}``.

        Raises ``RoomError`` (:meth:`Room.start`'s: ``not_host``, ``already_started``…).
        """
        connection = self.connections.require(sid)
        room, start_at = await self._change(
            room_id, lambda room: room.start(connection.user_id, int(now_ms()))
        )
        parts = {p: u for p, u in room.parts_taken().items() if u in room.members}
        await self.broadcast.emit(
            "room:started",
            {"room_id": room_id, "start_at": start_at, "tempo_bpm": room.tempo_bpm, "parts": parts},
            room_id,
        )
        for user_id, member_sid in self._room_sids[room_id].items():
            member = self.connections.get(member_sid)
            if member is not None:
                status = status_of(room, room.members[user_id].role)
                await self.presence.device_changed(member, room_id, status)
        await self._publish_state(room)
        await self._started(room)
        self.partners.start(room)
        self.practice.start(room)
        self._schedule_finish_check(room)
        log.info("room %s starts at %d", room_id, start_at)
        return {"room_id": room_id, "start_at": start_at}

    async def end(self, sid: str, room_id: str) -> dict[str, Any]:
        """The host ends a started room → ``{"room_id", "session_id"}``.

        Raises ``RoomError`` ``unknown_room``, ``not_host``, ``not_started``.
        """
        connection = self.connections.require(sid)
        room = await self._lookup(room_id, fresh=True)
        if connection.user_id != room.host:
            raise RoomError("not_host", "only the host can end the room")
        if room.start_at_ms is None:
            raise RoomError("not_started", "the room has not started; leave it instead")
        session_id = await self.finish(room, "host_ended")
        return {"room_id": room_id, "session_id": session_id}

    # -- notes -------------------------------------------------------------------------

    async def notes(self, sid: str, room_id: str, events: list[NoteEvent]) -> dict[str, Any]:
        """A player's notes (``t`` epoch ms) → ``{"accepted", "seq"}`` (the last one's).

        The others get ``note`` (one) or ``notes`` (a batch) with ``seq``; the
        player a throttled ``score:update``. Raises ``RoomError``
        ``unknown_room``, ``room_finished``, ``not_in_room`` and :meth:`Room.accept`'s.
        """
        received = time.perf_counter()
        connection = self.connections.require(sid)
        user_id = connection.user_id
        room = self._room(room_id)
        if room.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if self._room_sids[room_id].get(user_id) != sid:
            raise RoomError(
                "not_in_room", "join the room from this connection before sending notes"
            )
        recorded = await relay_notes(self, room, user_id, events, skip_sid=sid, received=received)
        return {"accepted": len(recorded), "seq": recorded[-1].seq}

    async def _send_score_update(self, room: Room, user_id: str) -> None:
        if room.is_finished or room.room_id not in self.rooms:
            return
        await self._scored(room)
        result = room.live_result(user_id, marks=True)  # marks: what to colour in the score
        if result is not None:
            payload = {"room_id": room.room_id, "user_id": user_id, **result}
            await self.broadcast.emit("score:update", payload, room.room_id)

    # -- finishing -------------------------------------------------------------------------

    def _schedule_finish_check(self, room: Room, due: float | None = None) -> None:
        due = due if due is not None else room.finish_due_ms()
        if due is not None:
            self.timers.schedule(room.room_id, due, lambda: self._finish_check(room))

    async def _finish_check(self, room: Room) -> None:
        if room.is_finished:
            return
        due = await self._finish_due(room)
        if due is not None and due - now_ms() > 5.0:  # a slow player pushed the end back
            self._schedule_finish_check(room, due)
            return
        await self.finish(room, "piece_ended")

    async def finish(self, room: Room, reason: str) -> str:
        """Close the room, save it once, tell everyone. Returns the session id.

        ``reason``: ``piece_ended``, ``host_ended``, ``all_left`` or
        ``server_shutdown``. Members get ``room:finished`` (see
        :func:`server.realtime.saving.finished_payload`) and the last ``room:state``.
        A room the database does not take yet is spooled (``saved: false``) and
        saved later, with ``session:saved`` to its players then.
        """
        if room.finished is not None:
            return room.finished.session_id
        session_id = await self._session_id(room)
        other = await self._claim_finish(room, reason, session_id)
        if other is not None:
            return other
        self.timers.cancel(room.room_id)
        self.partners.stop(room.room_id)
        self.practice.stop(room.room_id)
        self.away.forget_room(room.room_id)
        ended = int(now_ms())
        remote = await self._partials_elsewhere(room, session_id, ended)
        finished = room.finish(reason, ended, session_id, remote=remote)
        # Spooled before the first try: a database that is away costs no one their session.
        saved = await self.saver.save(finished)
        await self._announce_finished(room, finished_payload(finished, saved))
        log.info("room %s finished (%s), session %s", room.room_id, reason, session_id)
        if self.sync is not None:
            await self.sync.poke(p.user_id for p in finished.players)
        return session_id

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
        """Server shutdown: save every started room as it stands (``server_shutdown``)."""
        for room in list(self.rooms.values()):
            if room.start_at_ms is not None and not room.is_finished:
                if await self._goes_on_elsewhere(room):
                    continue
                try:
                    await self.finish(room, "server_shutdown")
                except Exception:
                    log.exception("could not save room %s at shutdown", room.room_id)

    async def _publish_state(self, room: Room) -> None:
        self._state_published[room.room_id] = time.monotonic()
        await self.broadcast.emit("room:state", room.state(now_ms()), room.room_id)

    def _drop_room(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)
        self._room_sids.pop(room_id, None)
        self._state_published.pop(room_id, None)
        self.broadcast.drop(room_id)
        self.scores.forget(room_id)
        self.partners.stop(room_id)
        self.practice.stop(room_id)
        self.away.forget_room(room_id)

    async def _announce_finished(self, room: Room, payload: dict[str, Any]) -> None:
        """Tell every member ``room:finished`` and the last ``room:state``; let them go."""
        await self.broadcast.emit("room:finished", payload, room.room_id)
        await self._publish_state(room)
        await self._release_members(room)
