"""What the rate limits cost: note acks and REST requests with the default limits vs none.

Two ``tutti serve`` processes started in the same run, one with the default
limits and one with every limit off (empty settings); the same client load
against each, alternating rounds. Prints p50/p99 of a ``note`` ack round
trip (one player in a started free jam, sequential) and of ``GET
/api/pieces`` with a bearer token (sequential), and the ratios.

Run: ``python -m loadtests.bench.limits [N]`` (N notes and N requests per round,
default 2000, 3 rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.play import connected
from tests.servers import start_server

OFF = (
    "--note-quota", "",
    "--rate-limit-events", "",
    "--rate-limit-clock", "",
    "--max-refusals", "",
    "--rate-limit-rest-user", "",
    "--rate-limit-rest-ip", "",
)  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def open_jam(url: str):
    client = await connected(url, "bench")
    room = (await client.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    rid = room["room_id"]
    await client.call("room:join", {"room_id": rid, "role": "player"})
    await client.call("room:start", {"room_id": rid})
    return client, rid


async def note_batch(client, rid: str, n: int, times: list[float]) -> None:
    """``n`` notes, one at a time, each ack's round trip appended to ``times`` (ms)."""
    for i in range(n):
        kind = "on" if i % 2 == 0 else "off"
        msg = {"room_id": rid, "type": kind, "pitch": 60, "velocity": 64 if kind == "on" else 0,
               "t": client.server_now()}  # fmt: skip
        began = time.perf_counter()
        ack = await client.sio.call("note", msg)
        times.append((time.perf_counter() - began) * 1000)
        assert "error" not in ack, ack


async def rest_round(url: str, token: str, n: int) -> list[float]:
    times = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(n):
            began = time.perf_counter()
            async with http.get(url + "/api/pieces") as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            times.append((time.perf_counter() - began) * 1000)
            if i % 200 == 199:
                await asyncio.sleep(1.0)  # well under the default 300/second per user
    return times


async def main(n: int, rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "default limits": start_server(Path(tmp) / "on"),
            "no limits": start_server(Path(tmp) / "off", *OFF),
        }
        try:
            notes: dict[str, list[float]] = {k: [] for k in servers}
            rest: dict[str, list[float]] = {k: [] for k in servers}
            tokens = {}
            for name, server in servers.items():
                client = await connected(server.url, "rest")
                tokens[name] = client.token
                await client.disconnect()
            jams = {name: await open_jam(server.url) for name, server in servers.items()}
            # Alternate servers every 100 notes, so both see the same machine load; at most
            # 300 notes per server per 2 s keeps under the default 400-per-2-s burst.
            for _ in range(rounds):
                for _ in range(n // 100):
                    began = time.perf_counter()
                    for name, (client, rid) in jams.items():
                        await note_batch(client, rid, 100, notes[name])
                    await asyncio.sleep(max(0.0, 0.7 - (time.perf_counter() - began)))
                for name, server in servers.items():
                    rest[name] += await rest_round(server.url, tokens[name], min(n, 400))
            for client, rid in jams.values():
                await client.call("room:end", {"room_id": rid})
                await client.disconnect()
        finally:
            for server in servers.values():
                server.stop()
    print(f"{'':16} {'note ack p50':>13} {'p99':>8} {'REST p50':>9} {'p99':>8}  (ms)")
    for name in servers:
        print(
            f"{name:16} {pct(notes[name], 50):13.3f} {pct(notes[name], 99):8.3f} "
            f"{pct(rest[name], 50):9.3f} {pct(rest[name], 99):8.3f}"
        )
    on, off = "default limits", "no limits"
    print(
        f"ratio (limits / none): note ack p50 {pct(notes[on], 50) / pct(notes[off], 50):.2f}, "
        f"REST p50 {pct(rest[on], 50) / pct(rest[off], 50):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
