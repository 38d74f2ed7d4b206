"""The transport guard through real servers: binary packets, floods, handshakes, caps, logs.

Each test speaks Engine.IO v4 / Socket.IO v5 packet by packet where the
official client cannot (``tests/e2e/test_raw_packets.py``'s :class:`RawSocket`),
with an honest client alongside whose answers must stay normal.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.e2e.test_raw_packets import RawSocket, health
from tests.hostile import Watchdog
from tests.play import connected

STALL_S = 2.0  # worst /api/health answer allowed while an attack runs (generous: shared CI)


def rss_mb(pid: int) -> float:
    """The process's resident set, MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def drain(ws: aiohttp.ClientWebSocketResponse, into: list) -> None:
    """Read ``ws`` until it closes, answering pings; text frames go to ``into``."""
    while True:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data == "2":
                await ws.send_str("3")
            into.append(msg.data)
        elif msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            return


def closed_with(texts: list[str]) -> dict | None:
    """The ``connection:closed`` payload among received frames, if any."""
    for text in texts:
        if text.startswith("42"):
            name, *args = json.loads(text[2:])
            if name == "connection:closed":
                return args[0]
    return None


async def test_binary_attachments_are_refused_and_never_buffered(fresh_server):
    server = fresh_server()
    bystander = await connected(server.url, "Bystander")
    attacker = await connected(server.url, "Binary")
    sock = await RawSocket.open(server.url, attacker.token)
    received: list[str] = []
    reader = asyncio.create_task(drain(sock.ws, received))
    before = rss_mb(server.proc.pid)
    frame = bytes(900_000)
    sent = 0
    with Watchdog(server.url) as dog:
        # Announces 451 000 000 attachments: the stock server keeps every one it gets.
        await sock.ws.send_str('451000000-["clock",{"_placeholder":true,"num":0}]')
        for _ in range(200):  # 180 MB
            if sock.ws.closed:
                break
            try:
                await asyncio.wait_for(sock.ws.send_bytes(frame), 10)
            except (TimeoutError, ConnectionError, RuntimeError):
                break
            sent += 1
        await asyncio.wait_for(reader, 15)
    grew = rss_mb(server.proc.pid) - before
    assert closed_with(received) == {
        "code": "binary_not_supported",
        "message": "Tutti has no binary events: binary packets and attachments are refused",
    }, received
    assert grew < 60, f"RSS grew by {grew:.0f} MB over {sent} frames of 900 KB"
    assert dog.worst_s < STALL_S, f"/api/health took {dog.worst_s:.2f} s"
    assert "t1" in await bystander.call("clock", {"t0": 1})  # others carry on
    assert (await health(server.url))["status"] == "ok"
    assert "closing connection" in server.log.read_text()  # the reason is logged
    await sock.close()
    await bystander.disconnect()
    await attacker.disconnect()


async def test_a_lone_binary_frame_closes_the_connection(server):
    client = await connected(server.url, "Lone frame")
    sock = await RawSocket.open(server.url, client.token)
    received: list[str] = []
    await sock.ws.send_bytes(b"\x04junk")
    await asyncio.wait_for(drain(sock.ws, received), 15)
    assert closed_with(received)["code"] == "binary_not_supported"
    assert "t1" in await client.call("clock", {"t0": 1})
    await sock.close()
    await client.disconnect()
