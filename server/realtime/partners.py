"""Computer partners: ``room:add_partner`` / ``room:remove_partner`` and one task per room
that plays the partner's part.

The partner is a member of the room (:meth:`rooms.room.Room.add_partner`,
``"bot": true``). When the room starts, :class:`Partners` gives it a
:class:`rooms.following.Follower` that listens to every human player's scorer
(``on_match``) and learns their round-trip time from their clock exchanges
(the members' ``rtt_ms``, :mod:`rooms.clock`); a task sleeps until the
follower has something to send, or a human note was heard, and sends it down
the same path as a person's notes (:func:`server.realtime.relay.relay_notes`),
so the others get ordinary ``note``/``notes`` events with ``seq``. The task
stops when the room finishes or the partner is removed (then the notes it
holds get their note-offs). On several processes the partner plays on the
process that started the room and hears the players scored there. In wait
mode (:mod:`rooms.wait_mode`) the follower is a
:class:`rooms.wait_mode.WaitFollower`, woken each time the human completes a chord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from rooms.errors import RoomError
from rooms.following import Cue, Follower
from rooms.notes import NoteEvent
from rooms.room import Room
from rooms.scoring import Scorer
from rooms.takes import Take, TakeFollower
from rooms.wait_mode import WaitFollower
from server.realtime.relay import relay_notes
from server.realtime.takes import load_take
from server.realtime.timers import now_ms
from server.services.schemas import PartnerAddIn

if TYPE_CHECKING:
    from server.realtime.room_service import RoomService

log = logging.getLogger("tutti.partners")


class _Playing:
    """One room's running partner: its follower, the task, and the wake-up of new notes."""

    def __init__(
        self,
        room: Room,
        follower: Follower | WaitFollower | TakeFollower,
        start_ms: float,
        scorers: list[Scorer],
    ) -> None:
        self.room = room
        self.follower = follower
        self.start_ms = start_ms  # epoch ms its times count from: start_at, or a loop pass's
        self.scorers = scorers  # the human scorers it listens to
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    def heard(self, expected_ms: float, played_ms: float) -> None:
        if isinstance(self.follower, Follower):
            self.follower.heard(expected_ms, played_ms)
        self.wake.set()


class Partners:
    """The computer partners of a :class:`server.realtime.room_service.RoomService`."""

    def __init__(self, service: RoomService) -> None:
        self.service = service
        self._playing: dict[str, _Playing] = {}
        self._takes: dict[str, Take] = {}  # room -> the recorded take its partner replays

    async def add(self, sid: str, msg: PartnerAddIn) -> dict[str, Any]:
        """``room:add_partner`` → ``{"room": state, "partner": {"user_id", "part", "follow"}}``.

        Raises ``RoomError``: ``unknown_room`` and :meth:`rooms.room.Room.add_partner`'s.
        """
        user_id = self.service.connections.require(sid).user_id
        take = None
        if msg.from_session is not None and msg.user_id is not None:
            known = await self.service._lookup(msg.room_id)
            take = await load_take(self.service, user_id, known, msg.from_session, msg.user_id)
        room, seat = await self.service._change(
            msg.room_id,
            lambda room: room.add_partner(
                user_id,
                msg.part if take is None else take.part,
                follow=msg.follow,
                now_ms=int(now_ms()),
                take=None if take is None else take.to_dict(),
            ),
        )
        if take is not None:
            self._takes[room.room_id] = take
        await self.service._publish_state(room)
        log.info(
            "room %s: computer partner on %s (follow=%s)", room.room_id, seat.part, seat.follow
        )
        partner = {"user_id": seat.user_id, "part": seat.part, "follow": seat.follow}
        if seat.take is not None:
            partner["take"] = seat.take
        return {"room": room.state(now_ms()), "partner": partner}

    async def remove(self, sid: str, room_id: str) -> dict[str, Any]:
        """``room:remove_partner`` → ``{"room_id", "removed": true}``.

        Raises ``RoomError``: ``unknown_room`` and :meth:`rooms.room.Room.remove_partner`'s.
        """
        user_id = self.service.connections.require(sid).user_id
        room = await self.service._lookup(room_id)
        room.check_remove_partner(user_id)
        playing = self._playing.get(room_id)
        self.stop(room_id)
        if playing is not None:  # the notes it holds are released before it goes
            await self._send(playing, playing.follower.release(now_ms() - playing.start_ms))
        room, _ = await self.service._change(
            room_id, lambda room: room.remove_partner(user_id, int(now_ms()))
        )
        await self.service._publish_state(room)
        return {"room_id": room_id, "removed": True}

    def start(self, room: Room) -> None:
        """The room started here: its partner (if any) listens and plays from now on."""
        seat = room.partner
        if seat is None or seat.user_id not in room.members or room.piece is None:
            return
        humans = room.players_present()
        notes = room.piece.part(seat.part).notes
        scale, tempo, ticks, start = room.time_scale, room.tempo_bpm, room.human_ticks(), None
        scorers = [s for s in (room.scorer_of(u) for u in humans) if s is not None]
        if room.loop_run is not None:  # one follower per pass, on the looped bars
            run, p = room.loop_run, room.loop_run.current
            notes = run.section.notes(notes)
            scale, tempo, start = room.piece.bpm / p.tempo_bpm, p.tempo_bpm, p.start_at_ms
            scorers = [p.scorers[u] for u in humans if u in p.scorers]
            ticks = {n.onset_tick for s in scorers for n in s.notes}
        follower: Follower | WaitFollower | TakeFollower = Follower(
            notes, time_scale=scale, tempo_bpm=tempo, human_ticks=ticks, follow=seat.follow
        )
        take = self._takes.get(room.room_id)
        if take is not None and seat.take is not None and seat.follow:
            follower = Follower(  # the take's own timing, following the humans
                take.as_notes(room.piece.bpm),
                time_scale=room.time_scale,
                tempo_bpm=room.tempo_bpm,
                human_ticks=room.human_ticks(),
            )
        elif take is not None and seat.take is not None:
            follower = TakeFollower(take, tempo_bpm=room.tempo_bpm)
        elif room.waiting:  # wait mode: it waits with the (one) human at each chord
            human = next(iter(room.waiting.values()))
            notes = room.piece.part(seat.part).notes
            follower = WaitFollower(notes, human=human, time_scale=room.time_scale)
        playing = _Playing(room, follower, start or _start(room), scorers if seat.follow else [])
        if room.waiting:
            human.listeners.append(lambda _: playing.wake.set())
        for scorer in playing.scorers:
            scorer.on_match = playing.heard
        self._playing[room.room_id] = playing
        playing.task = asyncio.get_running_loop().create_task(self._play(playing))

    def stop(self, room_id: str) -> None:
        """Stop ``room_id``'s partner (finished, removed, dropped); nothing when none plays."""
        playing = self._playing.pop(room_id, None)
        if playing is None or playing.room.is_finished:
            self._takes.pop(room_id, None)
        if playing is None:
            return
        if playing.task is not None and playing.task is not asyncio.current_task():
            playing.task.cancel()
        for scorer in playing.scorers:
            if scorer.on_match == playing.heard:
                scorer.on_match = None

    async def next_pass(self, room: Room) -> None:
        """A loop pass ended (:class:`server.realtime.practice.PracticeRunner`): the
        partner lets go of its notes and, when a pass follows, plays that one."""
        playing = self._playing.get(room.room_id)
        if playing is None:
            return
        self.stop(room.room_id)
        await self._send(playing, playing.follower.release(now_ms() - playing.start_ms))
        if room.pass_due_ms() is not None:
            self.start(room)

    async def _play(self, playing: _Playing) -> None:
        room, follower = playing.room, playing.follower
        start = playing.start_ms
        try:
            while not room.is_finished:
                follower.set_latency(_rtt(room))
                cues = follower.due(now_ms() - start)
                if cues:
                    await self._send(playing, cues)
                wake = follower.next_wake()
                if wake is None:
                    break
                playing.wake.clear()
                delay = (wake - (now_ms() - start)) / 1000.0
                if delay > 0:
                    with contextlib.suppress(TimeoutError):  # woken by a note, or it is time
                        await asyncio.wait_for(playing.wake.wait(), delay)
        except Exception:  # a bug must not take the room down: the partner stops
            log.exception("room %s: the computer partner stopped", room.room_id)
        log.info("room %s: computer partner done %s", room.room_id, follower.stats())

    async def _send(self, playing: _Playing, cues: list[Cue]) -> None:
        room = playing.room
        seat = room.partner
        if not cues or seat is None or room.is_finished:
            return
        start = playing.start_ms
        events = [NoteEvent(c.type, c.pitch, c.velocity, start + c.t_ms) for c in cues]
        try:
            for at in range(0, len(events), 64):
                await relay_notes(
                    self.service, room, seat.user_id, events[at : at + 64], score=False
                )
        except RoomError as exc:  # the room finished meanwhile
            log.info("room %s: partner notes refused (%s)", room.room_id, exc.code)


def _start(room: Room) -> float:
    assert room.start_at_ms is not None
    return float(room.start_at_ms)


def _rtt(room: Room) -> float | None:
    """The mean round-trip time (ms) of the human players who measured one."""
    rtts = [room.members[u].rtt_ms for u in room.players_present()]
    known = [r for r in rtts if r is not None]
    return sum(known) / len(known) if known else None
