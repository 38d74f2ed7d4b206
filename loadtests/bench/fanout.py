"""What a process with no members in a busy room spends on that room's traffic.

Run: ``python -m loadtests.bench.fanout [--seconds 10] [--rate 25]``.

For each fan-out manager — python-socketio's stock ``AsyncRedisManager`` and
Tutti's per-room channels (:mod:`server.realtime.fanout`) — it starts a private Redis
and three ``tutti serve --redis-url`` processes. Four players on process 1
play in one free-jam room, each sending ``rate`` notes per second (every note
is relayed to the three others); processes 2 and 3 have one idle connection
each and no member in that room. It reports the CPU time (user + system, from
/proc) each process spent during the window and, for the per-room manager,
how many Redis messages processes 2 and 3 received. An idle window of the
same length, measured first in the same run, is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from server.clients.room_client import TuttiClient
from tests.servers import start_redis, start_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/health") as resp:
        return await resp.json()


async def connected(url: str, name: str) -> TuttiClient:
    client = TuttiClient(url)
    await client.connect(name)
    return client


async def play(client: TuttiClient, room_id: str, rate: float, seconds: float) -> int:
    sent = 0
    gap = 1.0 / rate
    deadline = time.monotonic() + seconds
    pitch = 60
    while time.monotonic() < deadline:
        await client.call(
            "note",
            {
                "room_id": room_id,
                "type": "on",
                "pitch": pitch,
                "velocity": 80,
                "t": time.time() * 1000,
            },
        )
        sent += 1
        pitch = 60 + (pitch - 59) % 24
        await asyncio.sleep(gap)
    return sent


async def measure(mode: str, seconds: float, rate: float, workdir: Path) -> dict:
    redis = start_redis(workdir / f"redis-{mode}")
    servers = [
        start_server(
            workdir / f"{mode}-{i}",
            "--redis-url",
            redis.url,
            "--fanout",
            mode,
            "--log-level",
            "WARNING",
        )
        for i in range(3)
    ]
    clients = []
    try:
        players = [await connected(servers[0].url, f"p{i}") for i in range(4)]
        idle = [await connected(s.url, "idle") for s in servers[1:]]
        clients = players + idle
        room_id = (await players[0].call("room:create", {"mode": "free", "count_in_beats": 0}))[
            "room"
        ]["room_id"]
        for p in players:
            await p.call("room:join", {"room_id": room_id, "role": "player"})
        await players[0].call("room:start", {"room_id": room_id})
        pids = [s.proc.pid for s in servers]

        before = [cpu_seconds(p) for p in pids]
        await asyncio.sleep(seconds)
        idle_cpu = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]

        counters_before = [(await health(s.url)).get("fanout", {}) for s in servers]
        before = [cpu_seconds(p) for p in pids]
        sent = sum(await asyncio.gather(*(play(p, room_id, rate, seconds) for p in players)))
        busy_cpu = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
        counters = [(await health(s.url)).get("fanout", {}) for s in servers]
        received = [
            c.get("received", 0) - b.get("received", 0) if c else None
            for c, b in zip(counters, counters_before, strict=True)
        ]
        return {
            "mode": mode,
            "sent": sent,
            "idle_cpu": idle_cpu,
            "busy_cpu": busy_cpu,
            "received": received,
        }
    finally:
        for c in clients:
            await c.disconnect()
        for s in servers:
            s.stop()
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=25.0, help="notes/s per player")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            asyncio.run(measure(m, args.seconds, args.rate, Path(tmp))) for m in ("stock", "rooms")
        ]
    print("# Fan-out: a busy room on process 1, nobody of it on processes 2 and 3\n")
    print(
        f"- {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.platform()}, {os.cpu_count()} cores; {args.seconds:g} s windows; "
        f"4 players × {args.rate:g} notes/s, each relayed to 3 members\n"
    )
    print(
        "| manager | notes sent | CPU s, idle window (P1/P2/P3) | CPU s, busy (P1) "
        "| CPU s, busy (P2) | CPU s, busy (P3) | Redis messages received (P2/P3) |"
    )
    print("|---|---:|---|---:|---:|---:|---|")
    for r in rows:
        idle = "/".join(f"{x:.2f}" for x in r["idle_cpu"])
        received = "/".join("n/a" if x is None else str(x) for x in r["received"][1:])
        print(
            f"| {r['mode']} | {r['sent']} | {idle} | {r['busy_cpu'][0]:.2f} "
            f"| {r['busy_cpu'][1]:.2f} | {r['busy_cpu'][2]:.2f} | {received} |"
        )
    stock, rooms = rows
    idle_p3 = max(rooms["idle_cpu"][2], 0.01)
    print(
        f"\nProcess 3 during the busy window: stock {stock['busy_cpu'][2]:.2f} s, "
        f"per-room {rooms['busy_cpu'][2]:.2f} s (its idle window: {idle_p3:.2f} s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
