"""``DevicePracticer``: one musician on several devices keeping the logbook in sync.

One guest login, ``--devices`` Socket.IO connections (each its own
``device_id`` and sync ``client_id``, as separate installs of the app would
be). Every few seconds one device changes the logbook — a quick log (most
often), a note on an earlier entry, a goal's progress, a deleted entry — and
pushes it with ``sync:push``; the server pokes the other devices
(``sync:poke``), which pull with ``sync:pull`` from their cursor. The
protocol is README "Sync" (:mod:`server.services.sync`); this is a gevent rendering of
:class:`server.clients.sync_client.SyncDevice` without its persistent store.

Reported (ms): ``sync sync:push`` — push → ack; ``sync sync:pull`` — one pull
page; ``sync propagation`` — a push sent on one device → another device's
pull reaching the push's version (once per other device); ``check sync
changes delivered`` (per change, when every other device has it) and, as a
failure, ``check sync changes lost`` — a device that had not pulled a change
``--sync-timeout`` seconds after it was acknowledged.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from locust import tag, task
from locust.exception import StopUser

from tutti_load.options import option
from tutti_load.socket_user import CallFailed, Connection, Lost, TuttiUser

ACTIVITIES = ("repertoire", "technique", "scales", "etudes", "sight_reading", "warm_up")


@dataclass
class Pending:
    """A pushed change other devices have yet to pull."""

    version: int
    sent: float  # perf_counter at the push
    waiting: set[int]  # indices of the devices that have not pulled it


@dataclass
class Device:
    index: int
    conn: Connection
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    next_mutation_id: int = 1
    cursor: int = 0
    poked: Event = field(default_factory=Event)
    lock: Semaphore = field(default_factory=Semaphore)  # one push or pull at a time
    puller: gevent.Greenlet | None = None
    reached: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=64))


class DevicePracticer(TuttiUser):
    """Several devices of one user pushing and pulling logbook changes."""

    weight = 1

    def wait_time(self) -> float:
        mean = float(option(self.environment, "think_seconds", 1.5))
        return random.uniform(0.5 * mean, 1.5 * mean)

    def on_start(self) -> None:
        self.timeout_s = float(option(self.environment, "sync_timeout", 10.0))
        count = max(2, int(option(self.environment, "devices", 3)))
        self.pending: dict[int, Pending] = {}
        self.entries: list[str] = []  # live logbook entry ids
        self.goal: str | None = None
        self.login("practicer")
        self.devices: list[Device] = []
        for i in range(count):
            device = Device(i, self.connection({}, device=f"{self.display_name} device {i}"))
            device.conn.sio.on("sync:poke", lambda data, d=device: d.poked.set())
            device.conn.connect(sync_clock=False)  # data carry device clocks only
            device.puller = gevent.spawn(self._pull_on_poke, device)
            self.devices.append(device)

    def on_stop(self) -> None:
        for device in self.devices:
            if device.puller is not None:
                device.puller.kill(block=False)
            device.conn.close()

    # -- the devices' work -----------------------------------------------------------------

    def _pull_on_poke(self, device: Device) -> None:
        while device.conn.connected:
            device.poked.wait()
            device.poked.clear()
            self._pull(device)

    def _pull(self, device: Device) -> None:
        with device.lock:
            while True:
                start = time.perf_counter()
                try:
                    answer = device.conn.call("sync:pull", {"cursor": device.cursor, "limit": 500})
                except Exception as exc:
                    device.conn.fire("sync", "sync:pull", start, exc)
                    return
                device.conn.fire("sync", "sync:pull", start)
                if answer["cursor"] > device.cursor:
                    device.cursor = answer["cursor"]
                    device.reached.append((device.cursor, time.perf_counter()))
                self._arrived(device)
                if not answer["has_more"]:
                    return

    def _arrived(self, device: Device) -> None:
        now = time.perf_counter()
        for version, pending in list(self.pending.items()):
            if version <= device.cursor and device.index in pending.waiting:
                pending.waiting.discard(device.index)
                self.report("sync", "propagation", (now - pending.sent) * 1000.0)
                if not pending.waiting:
                    del self.pending[version]
                    self.report("check", "sync changes delivered", 0.0)

    def _push(self, device: Device, mutation: dict[str, Any]) -> bool:
        mutation = {"mutation_id": device.next_mutation_id, **mutation}
        body = {"client_id": device.client_id, "mutations": [mutation]}
        with device.lock:
            start = time.perf_counter()
            try:
                answer = device.conn.call("sync:push", body)
                if "error" in answer:  # refused mutation: consumed, reported with its code
                    raise CallFailed(answer["error"]["code"], answer["error"]["message"])
            except Exception as exc:
                device.conn.fire("sync", "sync:push", start, exc)
                return False
            device.conn.fire("sync", "sync:push", start)
            device.next_mutation_id += 1
        version = answer["version"]
        others = set()
        for other in self.devices:
            if other is device:
                continue
            # A poked device may have pulled the change before this ack came back.
            when = next((t for cursor, t in other.reached if cursor >= version), None)
            if when is None:
                others.add(other.index)
            else:
                self.report("sync", "propagation", (when - start) * 1000.0)
        if others:
            self.pending[version] = Pending(version, start, others)
        else:
            self.report("check", "sync changes delivered", 0.0)
        return True

    def _overdue(self) -> None:
        now = time.perf_counter()
        for version, pending in list(self.pending.items()):
            if now - pending.sent > self.timeout_s:
                del self.pending[version]
                self.report(
                    "check",
                    "sync changes lost",
                    0.0,
                    Lost(
                        f"{len(pending.waiting)} device(s) had not pulled version {version} "
                        f"{self.timeout_s:g} s after its push"
                    ),
                )

    # -- what the musician does ------------------------------------------------------------

    @tag("sync")
    @task
    def change_logbook(self) -> None:
        if not all(d.conn.connected for d in self.devices):
            self.report("sio", "connect", 0.0, ConnectionError("a device disconnected"))
            raise StopUser()
        self._overdue()
        device = random.choice(self.devices)
        roll = random.random()
        if roll < 0.55 or not self.entries:
            row_id = uuid.uuid4().hex
            minutes = random.randint(5, 60)
            start = datetime.now(UTC) - timedelta(minutes=minutes)
            fields = {
                "source": "quick_log",
                "activity_type": random.choice(ACTIVITIES),
                "start_time": start.isoformat(),
                "duration_seconds": minutes * 60.0,
            }
            if self._push(
                device, {"entity": "logbook_entry", "op": "put", "id": row_id, "fields": fields}
            ):
                self.entries.append(row_id)
        elif roll < 0.75:
            fields = {
                "notes": f"felt better at {random.randint(60, 120)} BPM ({uuid.uuid4().hex[:6]})",
                "self_rating": random.randint(1, 5),
            }
            self._push(
                device,
                {
                    "entity": "logbook_entry",
                    "op": "put",
                    "id": random.choice(self.entries),
                    "fields": fields,
                },
            )
        elif roll < 0.9:
            if self.goal is None:
                self.goal = uuid.uuid4().hex
                fields = {"title": "Play the chorale at tempo", "progress": 0.0}
            else:
                fields = {"progress": float(random.randint(0, 100)), "notes": uuid.uuid4().hex[:8]}
            self._push(device, {"entity": "goal", "op": "put", "id": self.goal, "fields": fields})
        else:
            row_id = self.entries.pop(random.randrange(len(self.entries)))
            self._push(
                device, {"entity": "logbook_entry", "op": "delete", "id": row_id, "fields": {}}
            )
