"""The relay benchmark's load generator: one process driving many raw Socket.IO clients.

Driven by :mod:`loadtests.bench.relay` over a ``multiprocessing`` pipe, one
command at a time; each answer is ``("ok", result)`` or ``("error", text)``:

* ``("setup", plans)`` — log in (Tutti), connect and gather every room plan's
  members; answers ``{"room_ids": {key: room_id}, "connections": n}``. A plan
  is ``{"key", "server": "tutti"|"bare"|"raw", "room_id": str|None, "join": bool,
  "piece_id", "tempo_bpm", "members": [{"url", "role", "plays"}]}``; with
  ``room_id`` None the first member creates the room (Tutti: ``room:create``
  on the piece, duet mode, no count-in; bare relays: the key is the room).
  ``"bare"`` relays speak Socket.IO (:class:`loadtests.rawsio.RawSio`),
  ``"raw"`` ones JSON frames over a plain websocket
  (:class:`loadtests.rawjson.RawJson`, the same calls).
* ``("start",)`` — every Tutti room's host sends ``room:start``.
* ``("play", t0_epoch_s, rate, seconds, drain_s)`` — every playing member
  sends ``rate`` note events per second (alternately on and off, pitches
  from ``plan["pitches"]``) from ``t0`` for ``seconds``, each stamped ``t``
  = its send time (epoch ms: server clock = this machine's clock) and acked;
  then waits until deliveries stop (at most ``drain_s``). Answers the counts,
  the relay latencies (receive time − ``t``, ms, as ``array('d')`` bytes) and
  the send lags (how late each send was against its schedule, ms).
* ``("close",)`` — disconnect everyone and exit.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from typing import Any

import aiohttp

from loadtests.rawjson import RawJson
from loadtests.rawsio import RawSio

CLIENTS = {"tutti": RawSio, "bare": RawSio, "raw": RawJson}  # plan["server"] -> client class

SETUP_CONCURRENCY = 50


class Member:
    __slots__ = ("sio", "room_key", "room_id", "plays", "role", "url", "user_id")

    def __init__(self, url: str, role: str, plays: bool, room_key: str) -> None:
        self.url = url
        self.role = role
        self.plays = plays
        self.room_key = room_key
        self.room_id: str | None = None
        self.sio: RawSio | None = None
        self.user_id: str | None = None


class Generator:
    """The clients of one generator process and their counters."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.plans: list[dict[str, Any]] = []
        self.members: list[Member] = []
        self.hosts: list[Member] = []
        self.recording = False
        self.latencies = array("d")
        self.received: Counter[str] = Counter()
        self.other_events = 0
        self._counter = 0

    # -- setup -----------------------------------------------------------------------

    async def setup(self, plans: list[dict[str, Any]]) -> dict[str, Any]:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                timeout=aiohttp.ClientTimeout(total=60),
            )
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        room_ids: dict[str, str] = {}

        async def one(plan: dict[str, Any]) -> None:
            async with gate:
                room_ids[plan["key"]] = await self._setup_room(plan)

        await asyncio.gather(*(one(p) for p in plans))
        self.plans.extend(plans)
        return {"room_ids": room_ids, "connections": len(self.members)}

    async def _setup_room(self, plan: dict[str, Any]) -> str:
        members = [Member(m["url"], m["role"], m["plays"], plan["key"]) for m in plan["members"]]
        tutti = plan["server"] == "tutti"
        client = CLIENTS[plan["server"]]
        for member in members:
            await self._connect(member, tutti, client)
        room_id = plan.get("room_id")
        if not plan.get("join", True):
            self.members.extend(members)
            return ""
        if room_id is None:
            if tutti:
                ack = await members[0].sio.call(
                    "room:create",
                    {
                        "piece_id": plan["piece_id"],
                        "mode": "duet",
                        "tempo_bpm": plan["tempo_bpm"],
                        "count_in_beats": 0,
                        "name": f"bench {plan['key']}",
                    },
                )
                _check(ack, "room:create")
                room_id = ack["room"]["room_id"]
                self.hosts.append(members[0])
            else:
                room_id = plan["key"]
        for member in members:
            member.room_id = room_id
            if tutti:
                ack = await member.sio.call(
                    "room:join", {"room_id": room_id, "role": member.role, "part": None}
                )
            else:
                ack = await member.sio.call("join", {"room_id": room_id})
            _check(ack, "join")
        self.members.extend(members)
        return room_id

    async def _connect(self, member: Member, tutti: bool, client: type[RawSio]) -> None:
        assert self.session is not None
        self._counter += 1
        auth = None
        if tutti:
            async with self.session.post(
                member.url + "/api/auth/guest", json={"display_name": f"bench {self._counter}"}
            ) as resp:
                body = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"guest login failed: {resp.status} {body}")
            member.user_id = body["user"]["id"]
            auth = {
                "token": body["access_token"],
                "device_id": f"bench-{self._counter}",
                "device_name": "bench",
            }
        key = member.room_key

        def on_event(name: str, data: Any) -> None:
            if name == "note":
                if self.recording:
                    self.latencies.append(time.time() * 1000.0 - data["t"])
                self.received[key] += 1
            else:
                self.other_events += 1

        member.sio = client(self.session, member.url, on_event, only=('["note"',))
        await member.sio.connect(auth)

    async def start(self) -> dict[str, Any]:
        async def one(host: Member) -> int:
            ack = await host.sio.call("room:start", {"room_id": host.room_id})
            _check(ack, "room:start")
            return ack["start_at"]

        starts = await asyncio.gather(*(one(h) for h in self.hosts))
        return {"started": len(starts), "last_start_at": max(starts, default=0)}

    # -- playing -----------------------------------------------------------------------

    async def play(self, t0: float, rate: float, seconds: float, drain_s: float) -> dict:
        loop = asyncio.get_running_loop()
        start = loop.time() + (t0 - time.time())
        players = [m for m in self.members if m.plays]
        self.latencies = array("d")
        self.received.clear()
        self.other_events = 0
        lags = array("d")
        sent: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        refused: Counter[str] = Counter()  # by room key
        acked = [0]
        pitches = {p["key"]: p.get("pitches") or [60, 62, 64, 65, 67] for p in self.plans}

        def acker(key: str):
            def on_ack(value: Any) -> None:
                if isinstance(value, dict) and "error" in value:
                    errors[value["error"].get("code", "?")] += 1
                    refused[key] += 1
                else:
                    acked[0] += 1

            return on_ack

        async def player(index: int, member: Member) -> None:
            gap = 1.0 / rate
            phase = gap * index / max(1, len(players))  # spread sends evenly
            scale = pitches[member.room_key]
            k = 0
            sio = member.sio
            room_id = member.room_id
            key = member.room_key
            on_ack = acker(key)
            while True:
                due = start + phase + k * gap
                if due >= start + seconds:
                    break
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                lags.append((loop.time() - due) * 1000.0)
                on = k % 2 == 0
                payload = {
                    "room_id": room_id,
                    "type": "on" if on else "off",
                    "pitch": scale[(k // 2) % len(scale)],
                    "velocity": 80 if on else 0,
                    "t": time.time() * 1000.0,
                }
                if sio.closed:
                    errors["disconnected"] += 1
                    refused[key] += 1
                else:
                    await sio.emit("note", payload, on_ack)
                    sent[key] += 1
                k += 1

        self.recording = True
        await asyncio.gather(*(player(i, m) for i, m in enumerate(players)))
        # A worker of listeners only (fan-out spectators) has no sends to wait for: it
        # must still listen through the whole playing window before draining.
        await asyncio.sleep(max(0.0, start + seconds - loop.time()))
        # Drain: wait until deliveries and acks stop (bounded).
        deadline = loop.time() + drain_s
        last = -1
        quiet_since = loop.time()
        while loop.time() < deadline:
            total = sum(self.received.values()) + acked[0] + sum(errors.values())
            if total != last:
                last, quiet_since = total, loop.time()
            elif loop.time() - quiet_since >= 1.0:
                break
            await asyncio.sleep(0.1)
        self.recording = False
        unacked = sum(m.sio.pending_acks for m in players)
        return {
            "sent": sum(sent.values()),
            "sent_by_room": dict(sent),
            "received_by_room": dict(self.received),
            "acked": acked[0],
            "errors": dict(errors),
            "refused_by_room": dict(refused),
            "unacked": unacked,
            "other_events": self.other_events,
            "latencies": self.latencies.tobytes(),
            "lags": lags.tobytes(),
            "players": len(players),
        }

    async def close(self) -> None:
        await asyncio.gather(
            *(m.sio.close() for m in self.members if m.sio is not None), return_exceptions=True
        )
        if self.session is not None:
            await self.session.close()


def _check(ack: Any, what: str) -> None:
    if not isinstance(ack, dict) or "error" in ack:
        raise RuntimeError(f"{what} refused: {ack}")


def worker_main(conn) -> None:
    """Entry point of a generator process (``multiprocessing``, spawn)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(conn))


async def _serve(conn) -> None:
    loop = asyncio.get_running_loop()
    gen = Generator()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        name, args = command[0], command[1:]
        try:
            if name == "setup":
                result = await gen.setup(*args)
            elif name == "start":
                result = await gen.start()
            elif name == "play":
                result = await gen.play(*args)
            elif name == "close":
                await gen.close()
                conn.send(("ok", None))
                return
            else:
                raise ValueError(f"unknown command {name!r}")
            conn.send(("ok", result))
        except Exception as exc:  # reported to the orchestrator, which stops the run
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
