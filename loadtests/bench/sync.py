"""How fast a change on one device shows on another: ``python -m loadtests.bench.sync``.

Starts a real ``tutti serve`` (SQLite in a temporary folder), logs in one
guest and connects two of their devices (:class:`server.clients.sync_client.SyncDevice`
over Socket.IO). Device A makes N changes one at a time — a quick log, a new
goal, a repertoire status change, in turn — each pushed at once; device B
pulls when its ``sync:poke`` arrives. Measured per change: from the start of
A's write call to the moment B has pulled and applied it (push, commit, poke,
pull). A's own push round trip is shown too, and, as the baseline from the
same run, a plain Socket.IO round trip (the ``clock`` exchange).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path

from server.clients.room_client import TuttiClient
from server.clients.sync_client import SyncDevice
from tests.servers import start_server


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def row(name: str, samples: list[float]) -> str:
    return (
        f"| {name} | {len(samples)} | {percentile(samples, 50):.2f} | "
        f"{percentile(samples, 99):.2f} | {max(samples):.2f} |"
    )


async def measure(url: str, n: int) -> dict[str, list[float]]:
    client = TuttiClient(url)
    await client.login_guest("bench")
    a = SyncDevice(url, client.token, name="phone")
    b = SyncDevice(url, client.token, name="laptop")
    await a.connect()
    await b.connect()
    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    def on_change(change: dict, at: float) -> None:
        arrived.setdefault(change["id"] + str(change["version"]), at)
        event = waiting.get(change["id"] + str(change["version"]))
        if event is not None:
            event.set()

    b.listeners.append(on_change)
    piece = a.create("repertoire_item", {"work_title": "Cello suite 1", "status": "learning"})
    await a.push()
    await b.pull()
    statuses = ["learning", "working", "polished", "performance_ready"]
    end_to_end: list[float] = []
    push_rtt: list[float] = []
    for i in range(n + 10):  # the first 10 warm up
        t0 = time.perf_counter()
        if i % 3 == 0:
            row_id = a.log_practice("scales", 10, notes=f"run {i}")
        elif i % 3 == 1:
            row_id = a.create("goal", {"title": f"goal {i}", "progress": i % 100})
        else:
            row_id = piece
            a.put("repertoire_item", piece, {"status": statuses[i % len(statuses)]})
        assert await a.push()
        t_ack = time.perf_counter()
        version = a.acked[-1][0] if a.acked else a.cursor
        key = row_id + str(version)
        event = waiting.setdefault(key, asyncio.Event())
        if key not in arrived:
            await asyncio.wait_for(event.wait(), 5)
        if i >= 10:
            end_to_end.append((arrived[key] - t0) * 1000)
            push_rtt.append((t_ack - t0) * 1000)
        await a.pull()  # keep A's acked list short, as an app would after its own push
    assert b.state() == a.state()
    # Baseline: a bare Socket.IO round trip on the same server, same run.
    probe = TuttiClient(url)
    probe.token = client.token
    await probe.connect()
    baseline = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        await probe.call("clock", {"t0": time.time() * 1000})
        if i >= 10:
            baseline.append((time.perf_counter() - t0) * 1000)
    await probe.disconnect()
    await a.close()
    await b.close()
    return {"end_to_end": end_to_end, "push": push_rtt, "baseline": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="changes to measure (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # The baseline sends clock exchanges back to back, hundreds a second: no clock limit.
        server = start_server(Path(tmp) / "data", "--rate-limit-clock", "")
        try:
            results = asyncio.run(measure(server.url, args.n))
        finally:
            server.stop()
    print(f"Sync latency, one guest, two devices on one real server (N = {args.n}), ms\n")
    print("| measurement | n | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    print(row("write on A → applied on B (push, commit, poke, pull)", results["end_to_end"]))
    print(row("A's push acknowledged (write call → ack)", results["push"]))
    print(row("baseline: bare Socket.IO round trip (`clock`)", results["baseline"]))


if __name__ == "__main__":
    main()
