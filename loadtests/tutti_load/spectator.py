"""``Spectator``: joins rooms being played (by this process's DuetPlayers) and listens.

Picks a random started room, joins it with ``role: "spectator"``, and listens
until it finishes (or for ``--watch-seconds``), then leaves and picks another.
With no room playing it waits half a second and looks again.

Reported (ms): ``sio room:join``; ``spectator note`` — a player's stamp ``t``
→ its arrival here on the server clock (the lag a listener hears);
``check spectator notes delivered`` once per room watched (response length:
notes heard); ``check spectator notes lost`` — a failure when the room's note
seqs heard have a gap (seqs are one sequence per room, so every seq between
the first and last heard must have arrived).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import gevent
from gevent.event import Event
from locust import constant, tag, task
from locust.exception import StopUser

from tutti_load.board import board
from tutti_load.options import option
from tutti_load.socket_user import CallFailed, Lost, TuttiUser


class Spectator(TuttiUser):
    """A listener of live rooms."""

    weight = 2
    wait_time = constant(0)

    def on_start(self) -> None:
        self.watch_s = float(option(self.environment, "watch_seconds", 0.0))
        self.room_id: str | None = None
        self.seqs: set[int] = set()
        self.finished = Event()
        self.login("spectator")
        self.conn = self.connection(
            {"note": self._on_note, "notes": self._on_notes, "room:finished": self._on_finished},
            device="locust spectator",
        )
        self.conn.connect()

    def on_stop(self) -> None:
        self.conn.close()

    def _heard(self, events: list[dict[str, Any]]) -> None:
        now = self.conn.server_now()
        for event in events:
            self.report("spectator", "note", max(0.0, now - event["t"]))
            self.seqs.add(event["seq"])

    def _on_note(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self._heard([data])

    def _on_notes(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self._heard(data["events"])

    def _on_finished(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self.finished.set()

    @tag("spectator")
    @task
    def watch(self) -> None:
        if not self.conn.connected:
            self.report("sio", "connect", 0.0, ConnectionError("disconnected"))
            raise StopUser()
        room_id = board().live_room()
        if room_id is None:
            gevent.sleep(0.5)
            return
        self.seqs, self.finished = set(), Event()
        self.room_id = room_id
        body = {"room_id": room_id, "role": "spectator", "part": None}
        try:
            start = time.perf_counter()
            try:
                self.conn.call("room:join", body)
            except CallFailed as exc:
                if exc.code != "room_finished":  # finished since we picked it: no failure
                    self.conn.fire("sio", "room:join", start, exc)
                return
            except Exception as exc:
                self.conn.fire("sio", "room:join", start, exc)
                return
            self.conn.fire("sio", "room:join", start)
            finished = self.finished.wait(self.watch_s or 600)
            if not finished:
                with contextlib.suppress(Exception):
                    self.conn.call("room:leave", {"room_id": room_id})
            self._check(finished)
        finally:
            self.room_id = None

    def _check(self, finished: bool) -> None:
        if not self.seqs:
            return
        if not finished:
            gevent.sleep(0.5)  # notes relayed before the leave are still on their way
        missing = set(range(min(self.seqs), max(self.seqs) + 1)) - self.seqs
        self.report("check", "spectator notes delivered", 0.0, length=len(self.seqs))
        if missing:
            self.report(
                "check",
                "spectator notes lost",
                0.0,
                Lost(
                    f"{len(missing)} note seqs missing between {min(self.seqs)} and "
                    f"{max(self.seqs)}: {sorted(missing)[:5]}"
                ),
            )
