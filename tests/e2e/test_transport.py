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
import pytest

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


async def honest_duet(url: str, seconds: float) -> tuple[int, int]:
    """Two players in a free jam sending a note every 50 ms each for ``seconds``;
    returns (notes refused, notes the partners missed)."""
    one, two = await connected(url, "Honest one"), await connected(url, "Honest two")
    room = (await one.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    rid = room["room_id"]
    for client in (one, two):
        await client.call("room:join", {"room_id": rid, "role": "player"})
    await one.call("room:start", {"room_id": rid})

    async def play(client) -> tuple[int, int]:
        sent = refused = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            kind = "on" if sent % 2 == 0 else "off"
            note = {"room_id": rid, "type": kind, "pitch": 60, "t": client.server_now()}
            ack = await client.sio.call("note", {**note, "velocity": 80 if kind == "on" else 0})
            sent += 1
            refused += "error" in ack
            await asyncio.sleep(0.05)
        return sent, refused

    (sent_one, refused_one), (sent_two, refused_two) = await asyncio.gather(play(one), play(two))
    await asyncio.sleep(0.5)

    def heard(client, other) -> int:
        return sum(1 for n in client.received.get("note", []) if n["user_id"] == other.user["id"])

    missed = (sent_one - heard(two, one)) + (sent_two - heard(one, two))
    for client in (one, two):
        await client.disconnect()
    return refused_one + refused_two, missed


async def test_a_clock_flood_is_refused_then_cut_while_a_duet_plays_on(fresh_server):
    server = fresh_server()  # the default limits
    flooder = await connected(server.url, "Flood")
    sock = await RawSocket.open(server.url, flooder.token)
    received: list[str] = []
    reader = asyncio.create_task(drain(sock.ws, received))

    async def flood() -> int:
        sent = 0
        for i in range(20_000):
            if sock.ws.closed:
                break
            try:
                await sock.ws.send_str(f'42{i + 1}["clock",{{"t0":{i}}}]')
            except (ConnectionError, RuntimeError):
                break
            sent += 1
            if i % 100 == 99:
                await asyncio.sleep(0.01)  # let the reader and the duet run
        return sent

    with Watchdog(server.url) as dog:
        duet, sent = await asyncio.gather(honest_duet(server.url, 4.0), flood())
        await asyncio.wait_for(reader, 15)
    acks = [json.loads(t[t.index("[") :]) for t in received if t.startswith("43")]
    refused = [a[0]["error"]["code"] for a in acks if "error" in a[0]]
    answered = [a for a in acks if "t1" in a[0]]
    assert 20 <= len(answered) <= 30, len(answered)  # the burst of the clock limit
    assert set(refused) == {"rate_limited"} and len(refused) < 60, refused[:3]
    assert closed_with(received) == {
        "code": "too_many_refusals",
        "message": "this connection kept sending past its limits",
    }
    assert sent < 20_000  # cut off before the flood ended
    assert duet == (0, 0), f"the honest duet: {duet[0]} notes refused, {duet[1]} missed"
    assert dog.worst_s < STALL_S, f"/api/health took {dog.worst_s:.2f} s"
    rejections = (await health(server.url))["rejections"]
    # the refusal past the limit is not answered: the connection is closed instead
    assert rejections["refusals"] == 1 and rejections["clock"] == len(refused) + 1, rejections
    log = server.log.read_text()
    assert "too_many_refusals" in log and "kept sending past its limits" in log
    await sock.close()
    await flooder.disconnect()


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"


async def test_connections_that_never_authenticate_are_closed(fresh_server):
    server = fresh_server("--handshake-timeout-s", "1")
    honest = await connected(server.url, "Honest")  # authenticated at once: stays
    async with aiohttp.ClientSession() as http:
        silent = await http.ws_connect(ws_url(server.url))  # never sends a Socket.IO connect
        refused = await http.ws_connect(ws_url(server.url))
        await refused.send_str('40{"token":"forged","device_id":"d"}')  # connect_error, stays
        left = await RawSocket.open(server.url, honest.token)
        async with http.get(server.url + "/socket.io/?EIO=4&transport=polling") as resp:
            sid = json.loads((await resp.text())[1:])["sid"]  # a polling session, idle
        texts: dict[str, list[str]] = {"silent": [], "refused": []}
        await asyncio.wait_for(
            asyncio.gather(drain(silent, texts["silent"]), drain(refused, texts["refused"])), 10
        )
        await asyncio.sleep(1.2)  # past its own deadline
        assert "t1" in await left.call("clock", {"t0": 1})  # authenticated: still open
        await left.ws.send_str("41")  # leaves the namespace, keeps the session: closed too
        await asyncio.wait_for(drain(left.ws, []), 10)
        await left.close()
        assert any(t.startswith("44") for t in texts["refused"])  # the connect_error came first
        async with http.get(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}") as resp:
            # Closed: its pending CLOSE packet ("1"), or no such session any more.
            assert resp.status == 400 or (await resp.text()).endswith("1"), resp.status
    await asyncio.sleep(0.5)
    assert "t1" in await honest.call("clock", {"t0": 1})
    assert (await health(server.url))["connections"] == 1
    assert "no Socket.IO connect with a valid token within 1 s" in server.log.read_text()
    await honest.disconnect()


async def test_connections_per_address_are_capped(fresh_server):
    server = fresh_server("--max-connections-per-ip", "3")
    first = await connected(server.url, "First")
    async with aiohttp.ClientSession() as http:
        open_ = [await http.ws_connect(ws_url(server.url)) for _ in range(2)]  # unauthenticated
        try:
            await http.ws_connect(ws_url(server.url))
            raise AssertionError("a 4th connection from one address was accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429
        async with http.get(server.url + "/socket.io/?EIO=4&transport=polling") as resp:
            body = await resp.json()
            assert resp.status == 429 and body["error"]["code"] == "too_many_connections"
        assert "t1" in await first.call("clock", {"t0": 1})  # the open ones are untouched
        await open_[0].close()
        await asyncio.sleep(0.3)
        again = await http.ws_connect(ws_url(server.url))  # room again
        assert (await again.receive()).data.startswith("0")
        for ws in (again, open_[1]):
            await ws.close()
    assert (await health(server.url))["rejections"] == {"connections_per_ip": 2}
    await first.disconnect()

    proxied = fresh_server("--max-connections-per-ip", "1", "--trust-forwarded-for")
    async with aiohttp.ClientSession() as http:

        async def status(address: str) -> int:
            try:
                ws = await http.ws_connect(
                    ws_url(proxied.url), headers={"X-Forwarded-For": address}
                )
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            sockets.append(ws)
            return 101

        sockets: list = []
        assert [await status(a) for a in ("203.0.113.7", "198.51.100.2", "203.0.113.7")] == [
            101,
            101,
            429,
        ]
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("long_poll", [True, False], ids=["polling", "not-polling"])
async def test_an_oversized_polling_post_gets_413_and_its_session_ends_cleanly(
    fresh_server, long_poll
):
    server = fresh_server()
    bystander = await connected(server.url, "Bystander")
    polling = server.url + "/socket.io/?EIO=4&transport=polling"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(polling) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        session = f"{polling}&sid={sid}"
        auth = {"token": bystander.token, "device_id": "poll"}
        async with http.post(session, data="40" + json.dumps(auth)) as resp:
            assert resp.status == 200
        async with http.get(session) as resp:
            assert '40{"sid"' in await resp.text()  # connected (presence:state may come first)
        if long_poll:  # a long poll, as clients keep one
            pending = asyncio.create_task(http.get(session))
            await asyncio.sleep(0.2)
        body = '42["clock",{"t0":1,"pad":"' + "x" * 1_100_000 + '"}]'  # over the 1 MB cap
        async with http.post(session, data=body) as resp:
            assert resp.status == 413, resp.status
            assert (await resp.json())["error"]["code"] == "payload_too_large"
        if long_poll:
            async with await asyncio.wait_for(pending, 10) as resp:
                assert resp.status == 400 or (await resp.text()).endswith("1")  # CLOSE
        for _ in range(2):  # later requests on the session: a clean 400, not 500
            async with http.post(session, data='42["clock",{"t0":1}]') as resp:
                assert resp.status == 400, resp.status
                assert (await resp.json())["error"]["code"] == "unknown_session"
            async with http.get(session) as resp:
                assert resp.status == 400, resp.status
    assert "t1" in await bystander.call("clock", {"t0": 1})
    assert (await health(server.url))["connections"] == 1
    assert "Traceback" not in server.log.read_text()
    await bystander.disconnect()


JUNK = (
    "4x",  # no Socket.IO packet type
    "47",
    "44",  # CONNECT_ERROR comes from servers only
    "4",  # an empty Socket.IO packet
    "4-",
    '40{"token":',  # a CONNECT that is not JSON
    "43abc",  # an ACK that is not JSON
    "43[1",
)


def warnings_and_errors(log: Path) -> list[dict]:
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["level"] in ("WARNING", "ERROR", "CRITICAL"):
                lines.append(record)
        elif line.strip():
            lines.append({"level": "TEXT", "message": line})  # a library's own stream handler
    return lines


async def test_malformed_packets_are_logged_once_per_connection_without_tracebacks(fresh_server):
    server = fresh_server()
    honest = await connected(server.url, "Honest")
    before = len(warnings_and_errors(server.log))
    socks = [await RawSocket.open(server.url, honest.token) for _ in range(3)]
    for sock in socks[:2]:
        for junk in JUNK * 4:  # 32 malformed packets each: under max_refusals (50 in 10 s)
            await sock.ws.send_str(junk)
        assert "t1" in await sock.call("clock", {"t0": 1})  # dropped, and the connection stays
    # A third keeps at it: malformed packets count as refusals, so it is closed.
    received: list[str] = []
    reader = asyncio.create_task(drain(socks[2].ws, received))
    for junk in JUNK * 10:
        if socks[2].ws.closed:
            break
        await socks[2].ws.send_str(junk)
    await asyncio.wait_for(reader, 10)
    assert closed_with(received)["code"] == "too_many_refusals"
    # Junk below Socket.IO too: a websocket frame that is no Engine.IO packet, a polling
    # payload that is none.
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(server.url))
        await ws.receive()
        await ws.send_str("x")
        await asyncio.wait_for(drain(ws, []), 10)  # closed
        polling = server.url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(polling) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        for _ in range(3):
            async with http.post(f"{polling}&sid={sid}", data="9junk\x1ebzz!") as resp:
                assert resp.status < 500
    assert "t1" in await honest.call("clock", {"t0": 1})
    await asyncio.sleep(0.3)
    logged = warnings_and_errors(server.log)[before:]
    assert all(r["level"] == "WARNING" for r in logged), [
        r for r in logged if r["level"] != "WARNING"
    ]
    assert not any("exception" in r or "Traceback" in r["message"] for r in logged)
    malformed = [r for r in logged if r["message"].startswith("dropped a malformed packet")]
    # One line per connection, not one per packet (3 × 32 + …), plus the closing ones.
    assert len(malformed) == 3, [r["message"] for r in malformed]
    assert len(logged) <= 10, [r["message"] for r in logged]
    for sock in socks:
        await sock.close()
    await honest.disconnect()
