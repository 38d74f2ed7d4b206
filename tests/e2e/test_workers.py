"""``tutti serve --workers N``: N processes on one port (SO_REUSEPORT), rooms shared over Redis,
websockets only; a worker that dies is restarted; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from server.clients.room_client import TuttiClient, TuttiError
from tests.music import chorale_midi
from tests.play import upload_piece
from tests.servers import start_server


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


async def ws_client(url: str, name: str) -> TuttiClient:
    client = TuttiClient(url, transports=["websocket"])
    await client.connect(name)
    return client


async def test_two_workers_share_the_port_and_the_rooms(tmp_path, redis):
    proc = start_server(tmp_path / "data", "--workers", "2", "--redis-url", redis.url)
    clients: list[TuttiClient] = []
    try:
        wait_until(lambda: len(children(proc.proc.pid)) == 2)
        host = await ws_client(proc.url, "host")
        clients.append(host)
        info = await upload_piece(host, chorale_midi("bach/bwv66.6"), title="workers duet")
        room = (await host.call("room:create", {"piece_id": info["id"], "mode": "duet"}))["room"]
        await host.call("room:join", {"room_id": room["room_id"], "role": "player"})
        # Connections are spread by the kernel: several guests, whichever worker they reach,
        # see the one room.
        for i in range(6):
            guest = await ws_client(proc.url, f"listener {i}")
            clients.append(guest)
            joined = await guest.call(
                "room:join", {"room_id": room["room_id"], "role": "spectator"}
            )
            assert host.user["id"] in {m["user_id"] for m in joined["room"]["members"]}
        polling = TuttiClient(proc.url, transports=["polling"])
        with pytest.raises(TuttiError, match="connection_failed"):  # websockets only
            await asyncio.wait_for(polling.connect("poller"), 20)

        # A worker that dies is replaced.
        victim = sorted(children(proc.proc.pid))[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in children(proc.proc.pid))
        wait_until(lambda: len(children(proc.proc.pid)) == 2)
        assert "restarting" in proc.log.read_text()
    finally:
        for client in clients:
            await client.disconnect()
        workers = children(proc.proc.pid) if proc.proc.poll() is None else set()
        code = proc.stop(signal.SIGTERM, 40.0)
    assert code == 0, proc.log.read_text()[-3000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


def test_more_workers_without_redis_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="add --redis-url"):
        start_server(tmp_path / "data", "--workers", "2")
