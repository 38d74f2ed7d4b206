"""Locust load test for Tutti: groups of simulated musicians jamming in free-mode rooms.

Every simulated user logs in as a guest over REST, opens a Socket.IO connection
(python-socketio's synchronous client, which runs on locust's gevent: its
threads, events, ``requests`` and ``websocket-client`` sockets are all
monkey-patched), synchronises its clock NTP-style and keeps doing that every
``--clock-interval`` seconds. Users gather in groups of ``--room-size``: the
first of a group creates a free-mode room, everyone joins it as a player, the
host starts it once the group is full (or after ``--group-wait`` seconds), and
everyone plays ``--notes-per-second`` notes (a note-on, and its note-off half a
note-interval later) stamped on the server clock, for ``--session-seconds``;
then the host ends the room and the users form new groups.

Custom request events (locust's statistics, CSV and charts):

=========  ===============  ===========================================================
type       name             response time
=========  ===============  ===========================================================
``sio``    ``note``         send → ack of one ``note`` event (ms)
``relay``  ``note``         a partner's note stamp ``t`` → its arrival here, both on the
                            server clock (ms; clock-sync error included, floored at 0)
``clock``  ``rtt``          NTP round trip of one ``clock`` exchange, server time excluded
``sio``    ``connect``      Socket.IO handshake (ms)
``sio``    ``room:create``  and ``room:join``, ``room:start``, ``room:end``: ack time (ms)
=========  ===============  ===========================================================

Error acks, timeouts and refused connections are failures. Groups are formed
within one locust process; with ``--processes``/workers each process forms its
own groups. See ``loadtests/README.md``.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import gevent
import socketio
from gevent.event import Event
from locust import HttpUser, constant, events, task
from locust.exception import StopUser

from rooms.clock import ClockEstimator, ClockSample

SCALE = (0, 2, 4, 5, 7, 9, 11, 12)  # a major scale, semitones above the tonic
ROOM_ENDED = {"room_finished", "not_in_room", "unknown_room"}  # after room:end, not failures


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("Tutti", "Tutti load-test scenario")
    group.add_argument(
        "--room-size",
        type=int,
        default=4,
        env_var="TUTTI_ROOM_SIZE",
        help="players per free-mode room, 1-8 (default 4)",
    )
    group.add_argument(
        "--notes-per-second",
        type=float,
        default=8.0,
        env_var="TUTTI_NOTES_PER_SECOND",
        help="notes each player plays per second; each is a note-on and a note-off (default 8)",
    )
    group.add_argument(
        "--session-seconds",
        type=float,
        default=30.0,
        env_var="TUTTI_SESSION_SECONDS",
        help="how long a room plays before the host ends it (default 30)",
    )
    group.add_argument(
        "--group-wait",
        type=float,
        default=10.0,
        env_var="TUTTI_GROUP_WAIT",
        help="seconds a host waits for its group to fill before starting anyway (default 10)",
    )
    group.add_argument(
        "--count-in",
        type=int,
        default=0,
        env_var="TUTTI_COUNT_IN",
        help="count-in beats of each room, 0-16 (default 0)",
    )
    group.add_argument(
        "--clock-interval",
        type=float,
        default=2.0,
        env_var="TUTTI_CLOCK_INTERVAL",
        help="seconds between clock exchanges after the initial sync (default 2)",
    )
    group.add_argument(
        "--transport",
        choices=["websocket", "polling", "upgrade"],
        default="websocket",
        env_var="TUTTI_TRANSPORT",
        help="Socket.IO transport: websocket only, long-polling only, or polling "
        "upgraded to websocket (default websocket)",
    )


def _option(environment, name: str, default: Any) -> Any:
    options = getattr(environment, "parsed_options", None)
    return getattr(options, name, default) if options is not None else default


# -- grouping users into rooms -----------------------------------------------------------


@dataclass(eq=False)
class Group:
    """One room's worth of users; the first to claim a place is the host."""

    number: int
    size: int
    claimed: int = 1  # the host
    joined: int = 0
    closed: bool = False  # no more claims: the host is about to start
    room_id: str | None = None
    created: Event = field(default_factory=Event)  # set when room_id is known (or failed)


class Coordinator:
    """Hands out places in groups. Lives in one locust process (gevent: no locks needed)."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._open: Group | None = None

    def claim(self, size: int) -> tuple[Group, bool]:
        """A place in the open group, or a new group (then the caller is its host)."""
        group = self._open
        if group is not None and not group.closed and group.claimed < group.size:
            group.claimed += 1
            if group.claimed >= group.size:
                self._open = None
            return group, False
        group = Group(next(self._numbers), max(1, min(size, 8)))
        self._open = group if group.size > 1 else None
        return group, True

    def close(self, group: Group) -> None:
        group.closed = True
        if self._open is group:
            self._open = None


COORDINATOR = Coordinator()


@events.test_start.add_listener
def _fresh_groups(**_kwargs) -> None:
    # A new run (the web UI can start many) must not join the rooms of the last one.
    global COORDINATOR
    COORDINATOR = Coordinator()


class CallFailed(Exception):
    """An error ack: ``code`` is the server's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


# -- the simulated musician ------------------------------------------------------------------


class TuttiPlayer(HttpUser):
    """A musician: guest login, Socket.IO, clock sync, then room after room of free jamming."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.room_size = int(_option(self.environment, "room_size", 4))
        self.rate = max(0.1, float(_option(self.environment, "notes_per_second", 8.0)))
        self.session_s = float(_option(self.environment, "session_seconds", 30.0))
        self.group_wait_s = float(_option(self.environment, "group_wait", 10.0))
        self.count_in = int(_option(self.environment, "count_in", 0))
        self.clock_interval_s = max(0.2, float(_option(self.environment, "clock_interval", 2.0)))
        transport = _option(self.environment, "transport", "websocket")
        self.transports = None if transport == "upgrade" else [transport]
        self.clock = ClockEstimator()
        self.sio: socketio.Client | None = None
        self.user_id: str | None = None
        self.room_id: str | None = None
        self.started: dict[str, Any] | None = None
        self.started_event = Event()
        self.finished_event = Event()
        self._clock_greenlet: gevent.Greenlet | None = None
        self.name = f"locust-{uuid.uuid4().hex[:6]}"
        self._login()
        self._connect()

    def on_stop(self) -> None:
        if self._clock_greenlet is not None:
            self._clock_greenlet.kill(block=False)
        sio, self.sio = self.sio, None
        if sio is not None:
            with gevent.Timeout(5, False):
                sio.disconnect()

    # -- setup -----------------------------------------------------------------------------

    def _login(self) -> None:
        with self.client.post(
            "/api/auth/guest",
            json={"display_name": self.name},
            name="/api/auth/guest",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"guest login answered {resp.status_code}: {resp.text[:200]}")
                raise StopUser()
            body = resp.json()
        self.token = body["access_token"]
        self.user_id = body["user"]["id"]

    def _connect(self) -> None:
        sio = socketio.Client(reconnection=False)
        sio.on("note", self._on_note)
        sio.on("notes", self._on_notes)
        sio.on("room:started", self._on_started)
        sio.on("room:finished", self._on_finished)
        auth = {"token": self.token, "device_id": uuid.uuid4().hex[:12], "device_name": "locust"}
        start = time.perf_counter()
        try:
            sio.connect(self.host, auth=auth, transports=self.transports, wait_timeout=10)
        except Exception as exc:  # refused, or the server is not there
            self._fire("sio", "connect", start, exc)
            raise StopUser() from exc
        self._fire("sio", "connect", start)
        self.sio = sio
        for _ in range(8):
            self._clock_exchange()
        self._clock_greenlet = gevent.spawn(self._clock_loop)

    # -- clock -----------------------------------------------------------------------------

    def _clock_exchange(self) -> None:
        t0 = time.time() * 1000.0
        start = time.perf_counter()
        try:
            ack = self._call("clock", {"t0": t0, "rtt_ms": self.clock.rtt_ms})
            t3 = time.time() * 1000.0
            sample = ClockSample(t0, ack["t1"], ack["t2"], t3)
        except ValueError:  # the local wall clock stepped back mid-exchange: drop the sample
            return
        except Exception as exc:
            self._fire("clock", "rtt", start, exc)
            return
        self.clock.add(sample)
        self._report("clock", "rtt", max(0.0, sample.rtt_ms))

    def _clock_loop(self) -> None:
        while self.sio is not None and self.sio.connected:
            gevent.sleep(self.clock_interval_s)
            self._clock_exchange()

    def server_now(self) -> float:
        return self.clock.to_server(time.time() * 1000.0)

    # -- incoming events ---------------------------------------------------------------------

    def _on_note(self, data: dict[str, Any]) -> None:
        if data.get("user_id") != self.user_id:
            self._report("relay", "note", max(0.0, self.server_now() - data["t"]))

    def _on_notes(self, data: dict[str, Any]) -> None:
        if data.get("user_id") != self.user_id:
            now = self.server_now()
            for event in data.get("events", []):
                self._report("relay", "note", max(0.0, now - event["t"]))

    def _on_started(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self.started = data
            self.started_event.set()

    def _on_finished(self, data: dict[str, Any]) -> None:
        if data.get("room_id") == self.room_id:
            self.finished_event.set()

    # -- the scenario ------------------------------------------------------------------------

    @task
    def jam(self) -> None:
        """One room: gather, start, play ``session_seconds``, end."""
        if self.sio is None or not self.sio.connected:
            self._fire("sio", "connect", time.perf_counter(), ConnectionError("disconnected"))
            raise StopUser()
        self.started, self.room_id = None, None
        self.started_event.clear()
        self.finished_event.clear()
        group, host = COORDINATOR.claim(self.room_size)
        try:
            joined = self._host_room(group) if host else self._join_room(group)
        finally:
            if host:  # never leave the group waiting or open, even on failure
                group.created.set()
                COORDINATOR.close(group)
        if not joined:
            gevent.sleep(0.5)
            return
        if not self.started_event.wait(self.group_wait_s + 15):
            self._fire("sio", "room:started", time.perf_counter(), TimeoutError("no room:started"))
            self._leave()
            return
        self._play()
        if host:
            gevent.sleep(0.3)  # let the partners' last notes arrive first
            self._timed_call("room:end", {"room_id": self.room_id})
        else:
            self.finished_event.wait(10)

    def _host_room(self, group: Group) -> bool:
        body = {
            "piece_id": None,
            "mode": "free",
            "tempo_bpm": 120.0,
            "count_in_beats": self.count_in,
            "name": f"locust jam {group.number}",
        }
        created = self._timed_call("room:create", body)
        if created is None:
            COORDINATOR.close(group)
            return False
        group.room_id = self.room_id = created["room"]["room_id"]
        group.created.set()
        if not self._timed_call(
            "room:join", {"room_id": self.room_id, "role": "player", "part": None}
        ):
            COORDINATOR.close(group)
            return False
        group.joined += 1
        deadline = time.monotonic() + self.group_wait_s
        while group.joined < group.size and time.monotonic() < deadline:
            gevent.sleep(0.05)
        COORDINATOR.close(group)  # no new claims; wait for the ones in flight
        deadline = time.monotonic() + 10
        while group.joined < group.claimed and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return self._timed_call("room:start", {"room_id": self.room_id}) is not None

    def _join_room(self, group: Group) -> bool:
        joined = False
        try:
            group.created.wait(30)
            if group.room_id is None:
                return False
            self.room_id = group.room_id
            body = {"room_id": self.room_id, "role": "player", "part": None}
            joined = self._timed_call("room:join", body) is not None
            return joined
        finally:
            if joined:
                group.joined += 1
            else:
                group.claimed -= 1  # gave up: the host must not wait for us

    def _play(self) -> None:
        """Notes from ``start_at`` for ``session_seconds``, on a fixed grid (no drift)."""
        start_local = self.clock.to_client(self.started["start_at"])
        gevent.sleep(max(0.0, (start_local - time.time() * 1000.0) / 1000.0))
        interval = 1.0 / self.rate
        t_start = time.monotonic()
        pitch = 60
        for k in itertools.count():
            if self.finished_event.is_set():
                return
            on_at = t_start + k * interval
            if on_at - t_start >= self.session_s:
                return
            gevent.sleep(max(0.0, on_at - time.monotonic()))
            pitch = 60 + random.choice(SCALE) + random.choice((-12, 0, 0, 12))
            if not self._send_note("on", pitch, random.randint(50, 110)):
                return
            gevent.sleep(max(0.0, on_at + interval / 2 - time.monotonic()))
            if not self._send_note("off", pitch, 0):
                return

    def _send_note(self, kind: str, pitch: int, velocity: int) -> bool:
        payload = {
            "room_id": self.room_id,
            "type": kind,
            "pitch": pitch,
            "velocity": velocity,
            "t": self.server_now(),
        }
        start = time.perf_counter()
        try:
            self._call("note", payload)
        except CallFailed as exc:
            if exc.code in ROOM_ENDED and self.finished_event.is_set():
                return False  # the host ended the room while this note was on its way
            self._fire("sio", "note", start, exc)
            return False
        except Exception as exc:
            self._fire("sio", "note", start, exc)
            return False
        self._fire("sio", "note", start)
        return True

    def _leave(self) -> None:
        if self.room_id is not None:
            with contextlib.suppress(Exception):
                self._call("room:leave", {"room_id": self.room_id})

    # -- helpers ---------------------------------------------------------------------------

    def _call(self, event: str, data: Any, timeout: float = 10.0) -> Any:
        ack = self.sio.call(event, data, timeout=timeout)
        if isinstance(ack, dict) and "error" in ack:
            raise CallFailed(ack["error"].get("code", "?"), ack["error"].get("message", ""))
        return ack

    def _timed_call(self, event: str, data: Any) -> Any:
        """``_call`` recorded as request ``sio``/``event``; ``None`` on failure."""
        start = time.perf_counter()
        try:
            ack = self._call(event, data)
        except Exception as exc:
            self._fire("sio", event, start, exc)
            return None
        self._fire("sio", event, start)
        return ack

    def _fire(self, kind: str, name: str, start: float, exc: Exception | None = None) -> None:
        self._report(kind, name, (time.perf_counter() - start) * 1000.0, exc)

    def _report(self, kind: str, name: str, ms: float, exc: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=0,
            exception=exc,
            context={"user_id": self.user_id, "room_id": self.room_id},
        )
