"""The chaos run of the hardening issue (13 §5): rooms across two processes while faults hit.

Run (``--seconds`` of faults, then the rooms' ends and the checks)::

    python -m loadtests.bench.chaos --rooms 12 --seconds 240 --seed 1

Two ``tutti serve`` processes share a private ``redis-server`` and one SQLite
database (each has its own data folder, so its own spool). ``--rooms`` duets
of Bach's chorale BWV 66.6 (``tests/music.py``) at ``TEMPO`` BPM start at
seeded random times over the run, each with a Soprano (the host) and a Bass
played by real Socket.IO clients (:func:`server.clients.bot.plan_groups`:
jitter, one dropped and one wrong note), each connected to a random process.
Meanwhile a seeded random schedule injects, one after the other:

* ``sigkill`` / ``sigterm`` of either process, started again 1-3 s later
  (same data folder, new port);
* ``redis_restart``: Redis stopped and started empty on the same port;
* ``db_pause``: the SQLite database held with ``BEGIN EXCLUSIVE`` from this
  process for ``--db-pause`` seconds (``10,30``: uniform in 10-30 s); with
  ``--postgres`` (one PostgreSQL instead) its tables locked ``ACCESS
  EXCLUSIVE`` as long;
* ``disconnect``: a random player's connection closed; it comes back on a
  random process with ``room:join`` (same part).

A player whose connection is gone reconnects to a process that is up and
rejoins; a ``notes`` call that got no answer (3 s) is *in doubt* (the
server may have taken it) and is not sent again. Then the checks:

* every room that started is saved exactly once (``lost``, ``duplicated``);
* each player's saved counts (``notes_played``, ``notes_matched``,
  ``wrong_pitch``, ``extra``, ``missed``) equal those of
  :class:`rooms.scoring.Scorer` fed the notes the server acknowledged, plus
  some of the in-doubt ones (``mismatched``);
* no ``500`` answer to any request (the servers' access logs), no 5xx from
  ``/api/health`` (polled on both processes every 100 ms); a write refused
  while the database is held is ``503 database_unavailable`` with
  ``Retry-After`` (counted apart: the database really is unavailable then);
* no unacked event: a call that timed out while its connection stayed up and
  no fault was under way (``unacked``);
* no ghost member: no chaos room is still open on a process at the end;
* the spool is empty at the end (``/readyz`` backlog and the folders).

Figures (printed as a table): rooms, faults by kind, sessions saved, lost,
duplicated, mismatched, in-doubt calls, unacked, 5xx, ghosts, spooled at the
end, ``Traceback`` lines in the servers' logs, and the worst ``/api/health``
latency during the attacks (ms; the event loop's lag shows in it: the
handler awaits one SELECT). :func:`run` returns them for
``tests/e2e/test_chaos.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import re
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from rooms.performance import PlannedEvent
from rooms.piece import Piece, load_midi
from rooms.scoring import Scorer
from server.clients.bot import Style, plan_groups
from server.clients.room_client import TuttiClient, TuttiError, local_ms
from tests.music import chorale_midi
from tests.servers import (
    PostgresProcess,
    RedisProcess,
    ServerProcess,
    start_postgres,
    start_redis,
    start_server,
)

TEMPO = 192.0
PARTS = ("Soprano", "Bass")
FAULTS = ("sigkill", "sigterm", "redis_restart", "db_pause", "disconnect")
COUNTS = ("notes_played", "notes_matched", "wrong_pitch", "extra", "missed")
CALL_TIMEOUT_S = 3.0
MAX_DOUBT_SUBSETS = 10  # a player with more in-doubt calls is checked only for the two ends


def say(text: str) -> None:
    print(text, flush=True)


# -- the two processes ------------------------------------------------------------------


class Slot:
    """One of the two server processes, started again after each stop."""

    def __init__(self, index: int, data_dir: Path, args: tuple[str, ...]) -> None:
        self.index = index
        self.data_dir = data_dir
        self.args = args
        self.proc: ServerProcess | None = None
        self.down = True

    async def start(self) -> None:
        self.proc = await asyncio.to_thread(start_server, self.data_dir, *self.args)
        self.down = False

    @property
    def url(self) -> str:
        assert self.proc is not None
        return self.proc.url

    @property
    def up(self) -> bool:
        return not self.down and self.proc is not None and self.proc.proc.poll() is None

    async def stop(self, sig: int) -> None:
        self.down = True
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop, sig, 60.0)


# -- the rooms ----------------------------------------------------------------------------


@dataclass
class Sent:
    """One ``notes`` call: its events and what came of it (``acked``, ``doubt``, ``refused``)."""

    group: list[PlannedEvent]
    status: str
    started: float
    ended: float
    connected_after: bool = True


@dataclass
class Player:
    part: str
    client: TuttiClient
    sent: list[Sent] = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)
    reconnects: int = 0


@dataclass
class RoomRun:
    key: int
    start_after_s: float
    room_id: str | None = None
    start_at: float | None = None
    started: bool = False
    done: bool = False
    players: dict[str, Player] = field(default_factory=dict)


class Chaos:
    """One chaos run (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.schedule = random.Random(args.seed)  # the faults: the same for one seed
        self.rng = random.Random(args.seed + 1)  # the clients (their order varies with timing)
        self.faults: Counter = Counter()
        self.timeline: list[tuple[float, float, str]] = []  # (start, end, kind) monotonic s
        self.health_worst_ms = 0.0
        self.health_samples = 0
        self.status_5xx = 0
        self.other_errors: Counter = Counter()
        self.database = workdir / "tutti.db"
        self.database_url = f"sqlite+aiosqlite:///{self.database}"
        self.postgres: PostgresProcess | None = None
        self.redis: RedisProcess | None = None
        self.slots: list[Slot] = []
        self.rooms: list[RoomRun] = []
        self.piece: Piece = load_midi(chorale_midi("bach/bwv66.6"), title="BWV 66.6 chaos")
        self.time_scale = self.piece.bpm / TEMPO
        self.piece_id = ""
        self._running = True

    # -- setting up ----------------------------------------------------------------------

    async def setup(self) -> None:
        self.redis = await asyncio.to_thread(start_redis, self.workdir / "redis")
        if self.args.postgres:
            self.postgres = await asyncio.to_thread(start_postgres, self.workdir / "postgres")
            self.database_url = self.postgres.url
        args = (
            "--redis-url",
            self.redis.url,
            "--database-url",
            self.database_url,
            "--reconnect-grace-s",
            "15",
            "--grace-ms",
            "1500",
            "--start-delay-ms",
            "300",
            "--rate-limit-rest-ip",
            "",
            "--max-connections-per-ip",
            "0",
            "--shutdown-timeout-s",
            "20",
        )
        self.slots = [Slot(i, self.workdir / f"data{i}", args) for i in range(2)]
        for slot in self.slots:  # one after the other: the first creates the database
            await slot.start()
        uploader = TuttiClient(self.slots[0].url)
        await uploader.login_guest("librarian")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{uploader.url}/api/pieces",
                params={"title": "BWV 66.6 chaos"},
                data=chorale_midi("bach/bwv66.6"),
                headers={"Authorization": f"Bearer {uploader.token}"},
            ) as resp,
        ):
            body = await resp.json()
            assert resp.status == 201, body
            self.piece_id = body["id"]
        span = max(1.0, self.args.seconds - 15.0)
        self.rooms = [RoomRun(k, self.rng.uniform(0, span)) for k in range(self.args.rooms)]

    def live_slot(self) -> Slot | None:
        up = [s for s in self.slots if s.up]
        return self.rng.choice(up) if up else None

    async def connect(self, name: str, old: TuttiClient | None = None) -> TuttiClient:
        """A connected client (a new guest, or ``old``'s user again) on a process that is up."""
        while True:
            slot = self.live_slot()
            if slot is None:
                await asyncio.sleep(0.2)
                continue
            client = TuttiClient(slot.url)
            try:
                if old is not None:
                    client.token, client.user = old.token, old.user
                await asyncio.wait_for(client.connect(name), 10)
                await asyncio.wait_for(client.sync_clock(3), 10)
                return client
            except (TuttiError, OSError, TimeoutError, aiohttp.ClientError, Exception) as exc:
                self.other_errors[f"connect: {type(exc).__name__}"] += 1
                with contextlib.suppress(Exception):
                    await client.disconnect()
                await asyncio.sleep(0.3)

    # -- one room -------------------------------------------------------------------------

    async def run_room(self, room: RoomRun) -> None:
        await asyncio.sleep(room.start_after_s)
        while not await self._open_room(room):
            pass
        if room.started:
            await asyncio.gather(*(self.play(room, p) for p in room.players.values()))
        await self._wait_finished(room)

    async def _open_room(self, room: RoomRun) -> bool:
        """Create, join and start; ``False`` when a fault got in the way before the start."""
        clients: list[TuttiClient] = []
        try:
            host = await self.connect(f"soprano {room.key}")
            clients.append(host)
            created = await host.call(
                "room:create",
                {
                    "piece_id": self.piece_id,
                    "mode": "duet",
                    "tempo_bpm": TEMPO,
                    "count_in_beats": 2,
                    "name": f"chaos {room.key}",
                },
                timeout=CALL_TIMEOUT_S * 2,
            )
            room_id = created["room"]["room_id"]
            await host.call(
                "room:join", {"room_id": room_id, "role": "player", "part": "Soprano"}, timeout=8
            )
            bass = await self.connect(f"bass {room.key}")
            clients.append(bass)
            await bass.call(
                "room:join", {"room_id": room_id, "role": "player", "part": "Bass"}, timeout=8
            )
        except Exception as exc:
            self.other_errors[f"setup: {getattr(exc, 'code', type(exc).__name__)}"] += 1
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.disconnect()
            await asyncio.sleep(0.5)
            return False
        room.room_id = room_id
        room.players = {"Soprano": Player("Soprano", host), "Bass": Player("Bass", bass)}
        while True:
            try:
                started = await room.players["Soprano"].client.call(
                    "room:start", {"room_id": room_id}, timeout=8
                )
                room.start_at, room.started = started["start_at"], True
                return True
            except Exception as exc:  # it may have started: the room's state tells
                self.other_errors[f"start: {getattr(exc, 'code', type(exc).__name__)}"] += 1
            for player in room.players.values():
                await self.rejoin(room, player)
            if room.done:
                return True
            state = room.players["Soprano"].client.received.get("joined") or []
            if state and state[-1]["room"]["start_at"] is not None:
                room.start_at, room.started = state[-1]["room"]["start_at"], True
                return True

    async def play(self, room: RoomRun, player: Player) -> None:
        assert room.room_id is not None and room.start_at is not None
        seed = self.args.seed * 1000 + room.key * 2 + PARTS.index(player.part)
        style = Style(jitter_ms=10, dropped=1, wrong=1, seed=seed)
        _, groups = plan_groups(
            self.piece.part(player.part), time_scale=self.time_scale, style=style
        )
        for group in groups:
            while not room.done:
                if not player.client.sio.connected:
                    await self.rejoin(room, player)
                    continue
                due = room.start_at + group[0].t_ms
                delay = (player.client.clock.to_client(due) - local_ms()) / 1000.0
                if delay > 0:
                    await asyncio.sleep(delay)
                events = [
                    {
                        "type": e.type,
                        "pitch": e.pitch,
                        "velocity": e.velocity,
                        "t": room.start_at + e.t_ms,
                    }
                    for e in group
                ]
                began = time.monotonic()
                try:
                    await player.client.call(
                        "notes", {"room_id": room.room_id, "events": events}, timeout=CALL_TIMEOUT_S
                    )
                except TuttiError as exc:
                    if exc.code in ("room_finished", "unknown_room"):
                        room.done = True
                        break
                    if exc.code == "not_in_room":  # never taken: join again, send again
                        await self.rejoin(room, player)
                        continue
                    player.refusals[exc.code] += 1
                    player.sent.append(Sent(group, "refused", began, time.monotonic()))
                    break
                except Exception:  # no answer: the server may have taken the notes
                    player.sent.append(
                        Sent(
                            group,
                            "doubt",
                            began,
                            time.monotonic(),
                            connected_after=player.client.sio.connected,
                        )
                    )
                    with contextlib.suppress(Exception):
                        await player.client.disconnect()
                    break
                player.sent.append(Sent(group, "acked", began, time.monotonic()))
                break
            if room.done or any(
                "room:finished" in p.client.received for p in room.players.values()
            ):
                room.done = True
                return

    async def rejoin(self, room: RoomRun, player: Player) -> None:
        """The player's user on a new connection, joined to the room again."""
        while not room.done:
            old = player.client
            client = await self.connect(player.part, old)
            try:
                joined = await client.call(
                    "room:join",
                    {"room_id": room.room_id, "role": "player", "part": player.part},
                    timeout=8,
                )
            except TuttiError as exc:
                with contextlib.suppress(Exception):
                    await client.disconnect()
                if exc.code in ("room_finished", "unknown_room"):
                    room.done = True
                    return
                self.other_errors[f"rejoin: {exc.code}"] += 1
                await asyncio.sleep(0.3)
                continue
            except Exception as exc:
                self.other_errors[f"rejoin: {type(exc).__name__}"] += 1
                with contextlib.suppress(Exception):
                    await client.disconnect()
                await asyncio.sleep(0.3)
                continue
            client.received["joined"].append(joined)
            with contextlib.suppress(Exception):
                await old.disconnect()
            # Keep what the old connection heard (room:finished may be among it).
            for event, items in old.received.items():
                client.received[event][:0] = items
            player.client = client
            player.reconnects += 1
            return

    async def _wait_finished(self, room: RoomRun) -> None:
        """Keep the players connected until the room's session is in the database: like
        a real client, a player whose connection dropped after its last note comes back
        (a room whose every member was on a process that died is finished by the
        process they come back to)."""
        deadline = time.monotonic() + 120
        while room.room_id is not None and time.monotonic() < deadline:
            if await self.sessions_of(room.room_id):
                break
            for player in room.players.values():
                heard = "room:finished" in player.client.received
                if room.started and not room.done and not heard and not player.client.sio.connected:
                    await self.rejoin(room, player)
            await asyncio.sleep(0.5)
        for player in room.players.values():
            with contextlib.suppress(Exception):
                await player.client.disconnect()

    # -- the faults ------------------------------------------------------------------------

    async def inject(self) -> None:
        end = time.monotonic() + self.args.seconds
        await asyncio.sleep(self.schedule.uniform(2, 4))
        while time.monotonic() < end:
            kind = self.schedule.choice(FAULTS)
            began = time.monotonic()
            await self.fault(kind)
            self.timeline.append((began, time.monotonic(), kind))
            self.faults[kind] += 1
            await asyncio.sleep(self.schedule.uniform(*self.args.gap))

    async def fault(self, kind: str) -> None:
        say(f"  {time.strftime('%H:%M:%S')} fault: {kind}")
        if kind in ("sigkill", "sigterm"):
            slot = self.schedule.choice(self.slots)
            await slot.stop(signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)
            await asyncio.sleep(self.schedule.uniform(1, 3))
            await slot.start()
        elif kind == "redis_restart":
            assert self.redis is not None
            await asyncio.to_thread(self.redis.restart)
        elif kind == "db_pause":
            await asyncio.to_thread(self._hold_database, self.schedule.uniform(*self.args.db_pause))
        elif kind == "disconnect":
            playing = [
                p for r in self.rooms if r.started and not r.done for p in r.players.values()
            ]
            if playing:
                player = playing[self.schedule.randrange(len(playing))]
                with contextlib.suppress(Exception):
                    await player.client.disconnect()
            await asyncio.sleep(self.schedule.uniform(0.5, 2))

    def _hold_database(self, seconds: float) -> None:
        db = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            db.execute("ROLLBACK")
        finally:
            db.close()

    # -- watching ------------------------------------------------------------------------

    async def watch_health(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while self._running:
                for slot in self.slots:
                    if not slot.up:
                        continue
                    began = time.perf_counter()
                    try:
                        async with http.get(slot.url + "/api/health") as resp:
                            await resp.read()
                            status = resp.status
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        continue  # the process is going down
                    took = (time.perf_counter() - began) * 1000
                    self.health_samples += 1
                    if status >= 500:
                        self.status_5xx += 1
                    elif slot.up:
                        self.health_worst_ms = max(self.health_worst_ms, took)
                await asyncio.sleep(0.1)

    # -- the checks ------------------------------------------------------------------------

    async def _hold_postgres(self, seconds: float) -> None:
        """PostgreSQL paused for the application: its tables locked (writes and reads of
        them wait), as a long migration would."""
        db = await asyncpg.connect(self._pg_dsn())
        try:
            async with db.transaction():
                await db.execute(
                    "LOCK TABLE practice_sessions, practice_logs, users IN ACCESS EXCLUSIVE MODE"
                )
                await asyncio.sleep(seconds)
        finally:
            await db.close()

    def _pg_dsn(self) -> str:
        assert self.postgres is not None
        return self.postgres.url.replace("postgresql+asyncpg://", "postgresql://")

    async def _rows(self, sql: str, value: str) -> list[tuple]:
        """``sql`` with one ``?`` parameter, on whichever database the run uses."""
        if self.postgres is not None:
            db = await asyncpg.connect(self._pg_dsn())
            try:
                return [tuple(r) for r in await db.fetch(sql.replace("?", "$1"), value)]
            finally:
                await db.close()

        def read() -> list[tuple]:
            with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as db:
                return db.execute(sql, (value,)).fetchall()

        return await asyncio.to_thread(read)

    async def sessions_of(self, room_id: str) -> list[str]:
        rows = await self._rows("SELECT id FROM practice_sessions WHERE room_id = ?", room_id)
        return [r[0] for r in rows]

    async def saved_results(self, session_id: str) -> dict[str, dict]:
        rows = await self._rows(
            "SELECT user_id, result FROM practice_logs WHERE session_id = ?", session_id
        )
        return {user: orjson.loads(result) for user, result in rows}

    def counts(self, part: str, groups: list[list[PlannedEvent]]) -> dict[str, int]:
        scorer = Scorer(self.piece.part(part).notes, time_scale=self.time_scale, tempo_bpm=TEMPO)
        for group in groups:
            for e in group:
                if e.type == "on":
                    scorer.note_on(e.pitch, e.t_ms)
                else:
                    scorer.note_off(e.pitch, e.t_ms)
        result = scorer.result(final=True)
        return {k: result[k] for k in COUNTS}

    def player_matches(self, player: Player, saved: dict[str, Any]) -> bool:
        """Saved counts equal those of the acked notes plus some of the in-doubt ones."""
        got = {k: saved.get(k) for k in COUNTS}
        doubts = [i for i, s in enumerate(player.sent) if s.status == "doubt"]
        if len(doubts) <= MAX_DOUBT_SUBSETS:
            choices = itertools.chain.from_iterable(
                itertools.combinations(doubts, n) for n in range(len(doubts) + 1)
            )
        else:
            choices = iter([(), tuple(doubts)])
        for chosen in choices:
            taken = set(chosen)
            groups = [
                s.group for i, s in enumerate(player.sent) if s.status == "acked" or i in taken
            ]
            if self.counts(player.part, groups) == got:
                return True
        return False

    def explained(self, sent: Sent) -> bool:
        """An unanswered call with a fault under way (or its connection gone)."""
        if not sent.connected_after:
            return True
        return any(a - 1.0 <= sent.ended and sent.started <= b + 1.0 for a, b, _ in self.timeline)

    async def check(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "rooms": len(self.rooms),
            "started": sum(r.started for r in self.rooms),
            "faults": dict(self.faults),
            "saved": 0,
            "lost": 0,
            "duplicated": 0,
            "mismatched": 0,
            "players_checked": 0,
            "in_doubt_calls": 0,
            "unacked": 0,
            "acked_calls": 0,
            "refused": Counter(),
            "reconnects": 0,
        }
        problems: list[str] = []
        for room in self.rooms:
            if room.room_id is None:
                continue
            sessions = await self.sessions_of(room.room_id)
            if len(sessions) > 1:
                figures["duplicated"] += len(sessions) - 1
                problems.append(f"room {room.key}: saved {len(sessions)} times")
            if not sessions:
                if room.started:
                    figures["lost"] += 1
                    problems.append(f"room {room.key} ({room.room_id}): never saved")
                continue
            figures["saved"] += 1
            saved = await self.saved_results(sessions[0])
            for player in room.players.values():
                figures["in_doubt_calls"] += sum(s.status == "doubt" for s in player.sent)
                figures["acked_calls"] += sum(s.status == "acked" for s in player.sent)
                figures["unacked"] += sum(
                    s.status == "doubt" and not self.explained(s) for s in player.sent
                )
                figures["refused"].update(player.refusals)
                figures["reconnects"] += player.reconnects
                figures["players_checked"] += 1
                result = saved.get(player.client.user["id"])
                if result is None:
                    if any(s.status == "acked" for s in player.sent):
                        figures["mismatched"] += 1
                        problems.append(f"room {room.key} {player.part}: no log saved")
                    continue
                if not self.player_matches(player, result):
                    figures["mismatched"] += 1
                    acked = [s.group for s in player.sent if s.status == "acked"]
                    problems.append(
                        f"room {room.key} {player.part}: saved "
                        f"{ {k: result.get(k) for k in COUNTS} }, acked notes give "
                        f"{self.counts(player.part, acked)} "
                        f"({sum(s.status == 'doubt' for s in player.sent)} in doubt)"
                    )
        figures["refused"] = dict(figures["refused"])
        figures["status_5xx"] = self.status_5xx
        answers = Counter()
        for slot in self.slots:
            for log in slot.data_dir.glob("server-*.log"):
                answers.update(re.findall(r'"status":(5\d\d)', log.read_text(errors="replace")))
        figures["answers_5xx"] = dict(answers)
        figures["status_500"] = answers.get("500", 0)
        figures["ghosts"] = await self.ghosts()
        figures["spooled"] = await self.spooled()
        figures["tracebacks"] = sum(
            log.read_text(errors="replace").count("Traceback")
            for slot in self.slots
            for log in slot.data_dir.glob("server-*.log")
        )
        figures["health_worst_ms"] = round(self.health_worst_ms, 1)
        figures["health_samples"] = self.health_samples
        figures["other_errors"] = dict(self.other_errors)
        figures["problems"] = problems
        return figures

    async def ghosts(self) -> int:
        """Chaos rooms still open on a process (members kept by a room that is over)."""
        ids = {r.room_id for r in self.rooms if r.room_id is not None}
        found = 0
        for slot in self.slots:
            client = TuttiClient(slot.url)
            await client.login_guest("auditor")
            listed = await client.fetch_json("/api/rooms")
            found += sum(r["room_id"] in ids and r["members"] for r in listed["rooms"])
        return found

    async def spooled(self) -> int:
        """Finished rooms not yet in the database, once the backlog had a minute to clear."""
        deadline = time.monotonic() + 60
        while True:
            files = sum(len(list((s.data_dir / "spool").glob("*.json"))) for s in self.slots)
            if files == 0 or time.monotonic() > deadline:
                return files
            await asyncio.sleep(0.5)

    async def run(self) -> dict[str, Any]:
        await self.setup()
        watcher = asyncio.ensure_future(self.watch_health())
        rooms = asyncio.gather(*(self.run_room(r) for r in self.rooms))
        await self.inject()
        await rooms
        self._running = False
        await watcher
        return await self.check()

    def close(self) -> None:
        for slot in self.slots:
            if slot.proc is not None:
                slot.proc.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def table(figures: dict[str, Any]) -> str:
    f = figures
    faults = ", ".join(f"{k} {v}" for k, v in sorted(figures["faults"].items())) or "none"
    rows = [
        ("rooms (started)", f"{figures['rooms']} ({figures['started']})"),
        ("faults", f"{sum(figures['faults'].values())}: {faults}"),
        ("sessions saved", figures["saved"]),
        ("lost", figures["lost"]),
        ("duplicated", figures["duplicated"]),
        ("players checked / counts mismatched", f"{f['players_checked']} / {f['mismatched']}"),
        (
            "notes calls acked / in doubt / unacked",
            f"{f['acked_calls']} / {f['in_doubt_calls']} / {f['unacked']}",
        ),
        ("reconnects", figures["reconnects"]),
        ("500 answers (any request, from the access logs)", f["status_500"]),
        ("503 answers (database held: Retry-After)", f["answers_5xx"].get("503", 0)),
        ("/api/health answers 5xx", f["status_5xx"]),
        ("ghost members", figures["ghosts"]),
        ("spooled at the end", figures["spooled"]),
        ("Traceback lines in the logs", figures["tracebacks"]),
        (
            "worst /api/health latency (ms)",
            f"{f['health_worst_ms']} ({f['health_samples']} samples)",
        ),
    ]  # fmt: skip
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rooms", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=240.0, help="of faults, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--db-pause", type=_range, default=(10.0, 30.0), help="database held, s: lo,hi"
    )
    parser.add_argument("--gap", type=_range, default=(3.0, 8.0), help="between faults, s: lo,hi")
    parser.add_argument(
        "--postgres", action="store_true", help="one PostgreSQL instead of one SQLite file"
    )
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (the logs)")
    return parser.parse_args(argv)


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tutti-chaos-")))
        chaos = Chaos(args, workdir)
        try:
            figures = asyncio.run(chaos.run())
        finally:
            chaos.close()
    say(table(figures))
    for problem in figures["problems"]:
        say(f"  problem: {problem}")
    if figures["other_errors"]:
        say(f"  client-side errors while faults were under way: {figures['other_errors']}")
    if figures["refused"]:
        say(f"  refused notes calls: {figures['refused']}")
    return figures


if __name__ == "__main__":
    main()
