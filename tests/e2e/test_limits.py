"""Abuse limits through real servers: note quota, event and REST rate limits, caps.

Real music first: the densest stretch of Joplin's Maple Leaf Rag (both hands,
chords) at twice its tempo passes the default note quota untouched.
"""

from __future__ import annotations

import asyncio
import bisect
import io
import json
import subprocess
import sys
import urllib.request

import aiohttp
import mido
import pytest
import socketio

from server.clients.room_client import TuttiClient, TuttiError
from server.realtime import codec
from tests.e2e.test_accounts import call
from tests.music import chorale_midi
from tests.play import connected

SPEED = 2.0  # the rag at twice its written tempo (100-120 BPM → 200-240)
WINDOW_S = 30.0  # score seconds of the densest stretch played


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/api/health", timeout=5) as resp:
        return json.loads(resp.read())


def rag_events() -> list[tuple[float, str, int, int]]:
    """The rag's note events, both hands: (score seconds, on/off, pitch, velocity)."""
    events = []
    t = 0.0
    for msg in mido.MidiFile(file=io.BytesIO(chorale_midi("joplin/maple_leaf_rag"))):
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            events.append((t, "on", msg.note, msg.velocity))
        elif msg.type in ("note_on", "note_off"):
            events.append((t, "off", msg.note, 0))
    return events


def densest(events: list, window: float) -> list:
    times = [e[0] for e in events]
    start = max(range(len(times)), key=lambda i: bisect.bisect_right(times, times[i] + window) - i)
    end = bisect.bisect_right(times, times[start] + window)
    return events[start:end]


async def free_room(host: TuttiClient, *players: TuttiClient) -> str:
    """A started free jam with ``host`` and ``players`` as players."""
    room = (await host.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    for client in (host, *players):
        await client.call("room:join", {"room_id": room["room_id"], "role": "player"})
    await host.call("room:start", {"room_id": room["room_id"]})
    return room["room_id"]


async def test_a_dense_rag_passes_the_note_quota_and_a_flood_does_not(fresh_server):
    server = fresh_server()
    pianist = await connected(server.url, "Scott")
    listener = await connected(server.url, "Listener")
    flooder = await connected(server.url, "Flood")
    rid = await free_room(pianist, listener, flooder)
    stretch = densest(rag_events(), WINDOW_S)
    burst = max(
        bisect.bisect_right([e[0] for e in stretch], e[0] + 2 * SPEED) - i
        for i, e in enumerate(stretch)
    )
    assert len(stretch) > 1000 and burst > 150  # dense: > 65 events/s, > 75/s at peaks

    # One message per key, as a MIDI keyboard sends them; chords back to back.
    loop = asyncio.get_running_loop()
    began = loop.time()
    first = stretch[0][0]
    refused = []
    for t, kind, pitch, velocity in stretch:
        delay = began + (t - first) / SPEED - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        ack = await pianist.sio.call(
            "note",
            {
                "room_id": rid,
                "type": kind,
                "pitch": pitch,
                "velocity": velocity,
                "t": pianist.server_now(),
            },
        )
        if "error" in ack:
            refused.append(ack)
    assert refused == []
    heard = lambda: sum(  # noqa: E731
        1 for n in listener.received.get("note", []) if n["user_id"] == pianist.user["id"]
    )
    for _ in range(100):
        if heard() == len(stretch):
            break
        await asyncio.sleep(0.05)
    assert heard() == len(stretch)
    assert health(server.url)["rejections"] == {}

    # A flood on another connection: 64-event batches, each costing 64 of the
    # 400-events-per-2-s burst: the 7th batch within 2 s is refused, not disconnected.
    answers = []
    for _ in range(7):
        now = flooder.server_now()
        events = [{"type": "on", "pitch": 60, "velocity": 1, "t": now} for _ in range(64)]
        answers.append(await flooder.sio.call("notes", {"room_id": rid, "events": events}))
    assert all("error" not in a for a in answers[:6])
    error = answers[6]["error"]
    assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 2
    assert flooder.sio.connected
    assert "t1" in await flooder.call("clock", {"t0": 1})  # other events still flow
    assert health(server.url)["rejections"] == {"notes": 1}
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
        exposition = resp.read().decode()
    assert 'tutti_rate_limit_rejections_total{kind="notes",scope="connection"} 1.0' in exposition
    await asyncio.sleep(error["retry_after"] + 0.1)
    ack = await flooder.sio.call(
        "note",
        {"room_id": rid, "type": "off", "pitch": 60, "velocity": 0, "t": flooder.server_now()},
    )
    assert ack.get("accepted") == 1  # the window moved on
    for client in (pianist, listener, flooder):
        await client.disconnect()


async def test_event_limit_per_connection(fresh_server):
    server = fresh_server("--rate-limit-events", "10/minute")
    one = TuttiClient(server.url)
    await one.connect("One")
    for _ in range(9):
        await one.call("sync:pull", {"cursor": 0})
    answer = await one.sio.call("no:such:event", {})
    assert answer["error"]["code"] == "unknown_event"  # the 10th event, still answered
    answer = await one.sio.call("sync:pull", {"cursor": 0})
    assert answer["error"]["code"] == "rate_limited" and answer["error"]["retry_after"] > 0
    assert one.sio.connected
    await one.sync_clock(20)  # clock samples are not counted
    two = TuttiClient(server.url)
    await two.connect("Two")
    assert "changes" in await two.call("sync:pull", {"cursor": 0})  # per connection
    assert health(server.url)["rejections"] == {"events": 1}
    await one.disconnect()
    await two.disconnect()


async def test_rest_limits_per_user_and_per_address(fresh_server):
    # Hour windows: the REST limits are a sliding window *counter*, which weighs the last
    # window down as the next one goes on; a test crossing a minute boundary (it takes about
    # a second) saw a 13th request allowed. Across an hour boundary that is 60 times rarer.
    server = fresh_server("--rate-limit-rest-user", "5/hour", "--rate-limit-rest-ip", "12/hour")
    status, body = await call(server.url, "POST", "/api/auth/guest", {"display_name": "A"})
    token_a = body["access_token"]
    status, body = await call(server.url, "POST", "/api/auth/guest", {"display_name": "B"})
    token_b = body["access_token"]
    for _ in range(5):
        assert (await call(server.url, "GET", "/api/users/me", token=token_a))[0] == 200
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            server.url + "/api/users/me", headers={"Authorization": f"Bearer {token_a}"}
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 429 and body["error"]["code"] == "rate_limited"
        assert 1 <= int(resp.headers["Retry-After"]) <= 3600
        assert "this user" in body["error"]["message"]
    # B is another user, but the address has made 8 of its 12 requests (refused ones count).
    codes = [(await call(server.url, "GET", "/api/users/me", token=token_b))[0] for _ in range(4)]
    assert codes == [200, 200, 200, 200]
    status, body = await call(server.url, "GET", "/api/pieces")
    assert status == 429 and "address" in body["error"]["message"]
    assert (await call(server.url, "GET", "/api/health"))[0] == 200  # probes are exempt
    assert health(server.url)["rejections"] == {"rest_user": 1, "rest_ip": 1}


async def test_rest_user_limit_is_shared_through_redis(fresh_server, redis):
    common = ("--redis-url", redis.url, "--rate-limit-rest-user", "4/hour")
    one, two = fresh_server(*common), fresh_server(*common)
    status, body = await call(one.url, "POST", "/api/auth/guest", {"display_name": "Roamer"})
    token = body["access_token"]
    codes = []
    for server in (one, two, one, two, two):
        codes.append((await call(server.url, "GET", "/api/pieces", token=token))[0])
    assert codes == [200, 200, 200, 200, 429]


async def test_connections_per_user_are_capped(fresh_server):
    server = fresh_server("--max-connections-per-user", "2")
    first = TuttiClient(server.url)
    await first.connect("Many devices")
    second = TuttiClient(server.url)
    second.token = first.token
    await second.connect()
    third = TuttiClient(server.url)
    third.token = first.token
    with pytest.raises(TuttiError) as refused:
        await third.connect()
    assert refused.value.code == "too_many_connections"
    other = await connected(server.url, "Someone else")  # per user
    await second.disconnect()
    await asyncio.sleep(0.2)
    await third.connect()  # room again
    assert health(server.url)["rejections"] == {"connections": 1}
    for client in (first, third, other):
        await client.disconnect()


async def test_spectators_are_capped(fresh_server):
    server = fresh_server("--max-spectators", "1")
    host = await connected(server.url, "Host")
    room = (await host.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    rid = room["room_id"]
    fan = await connected(server.url, "Fan")
    await fan.call("room:join", {"room_id": rid, "role": "spectator"})
    late = await connected(server.url, "Late fan")
    with pytest.raises(TuttiError) as refused:
        await late.call("room:join", {"room_id": rid, "role": "spectator"})
    assert refused.value.code == "room_full"
    await late.call("room:join", {"room_id": rid, "role": "player"})  # players are not capped
    state = await host.call("room:join", {"room_id": rid, "role": "player"})
    assert sorted(m["role"] for m in state["room"]["members"]) == ["player", "player", "spectator"]
    for client in (host, fan, late):
        await client.disconnect()


async def test_payload_caps(fresh_server):
    server = fresh_server("--max-socket-payload-bytes", "4096", "--max-upload-bytes", "1000")
    # REST: a JSON body beyond the request size cap is a JSON 413.
    status, body = await call(server.url, "POST", "/api/auth/guest", {"display_name": "x" * 5000})
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    # Socket.IO: engine.io advertises the cap (maxPayload); a bigger WebSocket frame is
    # closed with 1009 (RFC 6455: message too big) — nothing of it is read or applied.
    with urllib.request.urlopen(server.url + "/socket.io/?EIO=4&transport=polling") as resp:
        assert b'"maxPayload":4096' in resp.read()
    big = socketio.AsyncClient(reconnection=False, json=codec)
    host = await connected(server.url, "Host")
    await big.connect(
        server.url, auth={"token": host.token, "device_id": "d2"}, transports=["websocket"]
    )
    await big.emit("clock", {"t0": 1, "pad": "x" * 10_000})
    for _ in range(100):
        if not big.connected:
            break
        await asyncio.sleep(0.05)
    assert not big.connected
    assert "t1" in await host.call("clock", {"t0": 1})  # the server and others carry on
    await host.disconnect()


def test_a_malformed_limit_setting_is_a_clear_error(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--dev",
            "--note-quota",
            "lots",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "note_quota='lots' is not a rate limit" in run.stderr


async def test_behind_a_proxy_the_forwarded_address_is_limited(fresh_server):
    server = fresh_server("--trust-forwarded-for", "--rate-limit-rest-ip", "2/hour")

    async def pieces(address: str) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.url + "/api/pieces", headers={"X-Forwarded-For": address}) as resp,
        ):
            return resp.status

    assert [await pieces("203.0.113.7, 10.0.0.1") for _ in range(3)] == [200, 200, 429]
    assert await pieces("198.51.100.2") == 200  # another client behind the same proxy
