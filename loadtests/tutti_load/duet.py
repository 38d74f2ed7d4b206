"""``DuetPlayer``: pairs up, plays its part of a real piece at the piece's note rate.

Each user logs in as a guest, connects, syncs its clock, and then, room after
room: takes a place in a group of ``--room-size`` (the first of a group
creates a duet — an ensemble beyond two — on the library piece and hosts
it), joins as a player (``part: null``: the first free part), and when the
host has started the room plays its part: the piece's notes at their times
from its tempo map (scaled to the room's tempo), each ``note`` (a chord: one
``notes`` batch) sent when due and stamped ``t`` with the moment it is sent
on the synchronised server clock. The room ends with the piece (or, with
``--play-seconds``, when the host sends ``room:end``).

Reported (ms):

* ``sio note`` / ``sio notes`` — send → ack;
* ``relay note`` — a partner's stamp ``t`` → its arrival here, both on the
  server clock (clock-sync errors included, floored at 0);
* ``score score:update`` — scoring round trip: a note-on sent → the first
  ``score:update`` of this player counting it (includes the server's
  ``--score-interval-ms`` throttle, 250 ms by default);
* ``score room:finished`` — the host's ``room:end`` → ``room:finished`` with the
  final results (scoring, MIDI recording and saving the session);
* ``check notes delivered`` — once per partner and room, with the number of
  the partner's notes that arrived as response length; ``check notes lost`` —
  a failure when an acknowledged note of a partner never arrived.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

import gevent
from gevent.event import Event
from locust import constant, tag, task
from locust.exception import StopUser

from tutti_load.board import Group, board
from tutti_load.library import RoomPiece, room_piece
from tutti_load.options import option
from tutti_load.socket_user import CallFailed, Lost, TuttiUser

ROOM_ENDED = {"room_finished", "not_in_room", "unknown_room"}  # a note crossing the room's end


class DuetPlayer(TuttiUser):
    """A musician playing duets (ensembles with ``--room-size`` > 2) on a library piece."""

    weight = 6
    wait_time = constant(0)

    def on_start(self) -> None:
        env = self.environment
        self.room_size = max(1, min(8, int(option(env, "room_size", 2))))
        self.tempo_bpm = float(option(env, "tempo_bpm", 0.0)) or None
        self.play_s = float(option(env, "play_seconds", 0.0))
        self.jitter_ms = float(option(env, "jitter_ms", 10.0))
        self.count_in = int(option(env, "count_in", 0))
        self.group_wait_s = float(option(env, "group_wait", 10.0))
        self.login("duet")
        self.piece: RoomPiece = room_piece(self, option(env, "piece", ""), self.room_size)
        self.room_id: str | None = None
        self._new_room()
        self.conn = self.connection(
            {
                "note": self._on_note,
                "notes": self._on_notes,
                "room:started": self._on_started,
                "room:finished": self._on_finished,
                "score:update": self._on_score,
            }
        )
        self.conn.connect()

    def on_stop(self) -> None:
        self.conn.close()

    def _new_room(self) -> None:
        self.started: dict[str, Any] | None = None
        self.started_event = Event()
        self.finished_event = Event()
        self.received: dict[str, set[int]] = {}  # partner's user id → seqs that arrived
        self.on_sent: list[float] = []  # perf_counter of each note-on sent, in order
        self.scored = 0  # note-ons a score:update has counted

    # -- incoming ----------------------------------------------------------------------------

    def _heard(self, user_id: str, events: list[dict[str, Any]]) -> None:
        now = self.conn.server_now()
        seqs = self.received.setdefault(user_id, set())
        for event in events:
            self.report("relay", "note", max(0.0, now - event["t"]))
            seqs.add(event["seq"])

    def _on_note(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id and data.get("user_id") != self.user_id:
            self._heard(data["user_id"], [data])

    def _on_notes(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id and data.get("user_id") != self.user_id:
            self._heard(data["user_id"], data["events"])

    def _on_started(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self.started = data
            self.started_event.set()

    def _on_finished(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self.finished_at = time.perf_counter()
            self.finished_event.set()
            board().live.pop(self.room_id, None)  # no new spectators

    def _on_score(self, data: dict[str, Any]) -> None:
        if data.get("room_id") != self.room_id or data.get("user_id") != self.user_id:
            return
        counted = min(int(data.get("notes_played", 0)), len(self.on_sent))
        now = time.perf_counter()
        for sent in self.on_sent[self.scored : counted]:
            self.report("score", "score:update", (now - sent) * 1000.0)
        self.scored = max(self.scored, counted)

    # -- one room ----------------------------------------------------------------------------

    @tag("duet")
    @task
    def play_room(self) -> None:
        """Gather, start, play the part, finish; then check that every note arrived."""
        if not self.conn.connected:
            self.report("sio", "connect", 0.0, ConnectionError("disconnected"))
            raise StopUser()
        self._new_room()
        self.room_id = None
        group, host = board().claim(self.room_size)
        try:
            joined = self._host(group) if host else self._join(group)
        finally:
            if host:  # never leave the group waiting or open, even on failure
                group.created.set()
                board().close(group)
        if not joined:
            gevent.sleep(0.5)
            return
        if not self.started_event.wait(self.group_wait_s + 15):
            self.report("sio", "room:started", 0.0, TimeoutError("no room:started"))
            with contextlib.suppress(Exception):
                self.conn.call("room:leave", {"room_id": self.room_id})
            return
        if host:
            board().live[self.room_id] = group
        try:
            self._play(group)
        finally:
            group.finished_sending(self.user_id)
        if host and self.play_s and not self.finished_event.is_set():
            self._end_room()
        if not self.finished_event.wait(self._finish_timeout_s()):
            self.report("sio", "room:finished", 0.0, TimeoutError("no room:finished"))
        else:
            self._check_delivery(group)
        board().live.pop(self.room_id, None)

    def _create_body(self, group: Group) -> dict[str, Any]:
        return {
            "piece_id": self.piece.id,
            "mode": "duet" if self.room_size == 2 else "ensemble",
            "tempo_bpm": self.tempo_bpm,
            "count_in_beats": self.count_in,
            "name": f"locust room {group.number}",
        }

    def _host(self, group: Group) -> bool:
        created = self.conn.timed_call("room:create", self._create_body(group))
        if created is None:
            return False
        group.room_id = self.room_id = created["room"]["room_id"]
        group.created.set()
        if not self._take_part(group):
            return False
        deadline = time.monotonic() + self.group_wait_s
        while group.joined < group.size and time.monotonic() < deadline:
            gevent.sleep(0.05)
        board().close(group)  # no new claims; wait for the ones in flight
        deadline = time.monotonic() + 10
        while group.joined < group.claimed and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return self.conn.timed_call("room:start", {"room_id": self.room_id}) is not None

    def _join(self, group: Group) -> bool:
        joined = False
        try:
            group.created.wait(30)
            if group.room_id is None:
                return False
            self.room_id = group.room_id
            joined = self._take_part(group)
            return joined
        finally:
            if not joined:
                group.claimed -= 1  # gave up: the host must not wait for us

    def _take_part(self, group: Group) -> bool:
        body = {"room_id": self.room_id, "role": "player", "part": None}
        ack = self.conn.timed_call("room:join", body)
        if ack is None:
            return False
        self.part = next(m["part"] for m in ack["room"]["members"] if m["user_id"] == self.user_id)
        group.players.append(self.user_id)
        group.sent[self.user_id] = set()
        group.joined += 1
        return True

    def _play(self, group: Group) -> None:
        """Send each group of planned events when due (on the server clock)."""
        start_at = self.started["start_at"]
        plan = self.piece.plan(
            self.part, self.started["tempo_bpm"], self.jitter_ms, seed=random.randrange(2**31)
        )
        for events in plan:
            t_ms = events[0].t_ms
            if self.play_s and t_ms > self.play_s * 1000.0:
                return
            due_s = self.conn.clock.to_client(start_at + t_ms) / 1000.0
            gevent.sleep(max(0.0, due_s - time.time()))
            if self.finished_event.is_set() or not self._send(group, events):
                return

    def _send(self, group: Group, events) -> bool:
        t = self.conn.server_now()
        notes = [{"type": e.type, "pitch": e.pitch, "velocity": e.velocity, "t": t} for e in events]
        if len(notes) == 1:
            name, payload = "note", {"room_id": self.room_id, **notes[0]}
        else:
            name, payload = "notes", {"room_id": self.room_id, "events": notes}
        start = time.perf_counter()
        # Counted before the call: the score:update counting them may beat the ack.
        self.on_sent.extend(start for e in events if e.type == "on")
        try:
            ack = self.conn.call(name, payload)
        except CallFailed as exc:
            if exc.code in ROOM_ENDED and self.finished_event.wait(2):
                return False  # crossed the host's room:end: not a failure
            self.fire("sio", name, start, exc)
            return False
        except Exception as exc:
            self.fire("sio", name, start, exc)
            return False
        self.fire("sio", name, start)
        last, accepted = ack["seq"], ack["accepted"]
        group.sent[self.user_id].update(range(last - accepted + 1, last + 1))
        return True

    def _end_room(self) -> None:
        gevent.sleep(0.3)  # let the partners' last notes arrive first
        start = time.perf_counter()
        try:
            self.conn.call("room:end", {"room_id": self.room_id})
        except CallFailed as exc:
            if exc.code in ROOM_ENDED:
                return  # the piece ended by itself meanwhile
            self.fire("sio", "room:end", start, exc)
            return
        except Exception as exc:
            self.fire("sio", "room:end", start, exc)
            return
        self.fire("sio", "room:end", start)
        if self.finished_event.wait(10):
            self.report("score", "room:finished", (self.finished_at - start) * 1000.0)

    def _finish_timeout_s(self) -> float:
        """The piece's remaining time at the room's tempo, plus grace and slack."""
        if self.play_s:
            return 15.0
        ratio = self.piece.info["tempo_bpm"] / self.started["tempo_bpm"]
        end_ms = self.started["start_at"] + self.piece.info["duration_seconds"] * 1000.0 * ratio
        return max(0.0, (end_ms - self.conn.server_now()) / 1000.0) + 20.0

    def _check_delivery(self, group: Group) -> None:
        """Every acknowledged note of every partner must have arrived here."""
        group.all_done.wait(10)
        for partner in group.players:
            if partner == self.user_id:
                continue
            sent = group.sent.get(partner, set())
            got = self.received.get(partner, set())
            lost = sent - got
            self.report("check", "notes delivered", 0.0, length=len(sent & got))
            if lost:
                self.report(
                    "check",
                    "notes lost",
                    0.0,
                    Lost(
                        f"{len(lost)} of {len(sent)} notes from a partner never arrived "
                        f"(seqs {sorted(lost)[:5]})"
                    ),
                )
