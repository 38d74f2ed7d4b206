"""Recovery streams (server/realtime/recovery.py): bounded, epoch-stamped logs of each
room's events."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from server.clients.room_client import TuttiClient
from server.realtime.recovery import LocalStreams, RedisStreams
from tests.music import chorale_midi
from tests.play import connected, upload_piece


async def _check_semantics(streams, room: str) -> None:
    epoch, first = await streams.append(room, "room:state", {"room_id": room, "n": 0})
    offsets = [first]
    for n in range(1, 4):
        e, offset = await streams.append(room, "note", {"room_id": room, "seq": n})
        assert e == epoch
        offsets.append(offset)
    missed = await streams.since(room, epoch, first)
    assert [m["event"] for m in missed] == ["note"] * 3
    assert [m["data"]["seq"] for m in missed] == [1, 2, 3]
    assert [m["data"]["offset"] for m in missed] == offsets[1:]
    assert all(m["data"]["epoch"] == epoch for m in missed)
    assert await streams.since(room, epoch, offsets[-1]) == []
    assert await streams.since(room, "another-epoch", first) is None
    assert await streams.since("no-such-room", epoch, first) is None
    assert await streams.since(room, epoch, "not-an-offset") is None
    # Past the bound: the oldest entries are trimmed, their offsets no longer recover.
    for n in range(4, 4 + 3 * streams.max_events):
        await streams.append(room, "note", {"room_id": room, "seq": n})
    assert await streams.since(room, epoch, first) is None
    _, last = await streams.append(room, "note", {"room_id": room, "seq": -1})
    assert await streams.since(room, epoch, last) == []


async def test_local_streams():
    await _check_semantics(LocalStreams(max_events=50), "r1")


async def test_local_streams_window():
    streams = LocalStreams(window_s=0.05)
    epoch, offset = await streams.append("r", "note", {"seq": 1})
    await asyncio.sleep(0.1)
    assert await streams.since("r", epoch, offset) is None
    new_epoch, _ = await streams.append("r", "note", {"seq": 2})
    assert new_epoch != epoch  # everything older was expired


async def test_redis_streams(redis):
    client = aioredis.from_url(redis.url)
    try:
        room = uuid.uuid4().hex
        # MAXLEN ~ trims whole nodes (100 entries): 3 × 50 appended past 50 trims the first.
        await _check_semantics(RedisStreams(client, max_events=50), room)
        streams = RedisStreams(client)
        epoch, offset = await streams.append(room, "note", {"seq": 1})
        assert await client.ttl(f"tutti:room:{room}:stream") > 100
        # Redis lost the stream (as after a restart): a new epoch, old offsets refused.
        await client.delete(f"tutti:room:{room}:stream", f"tutti:room:{room}:epoch")
        new_epoch, new_offset = await streams.append(room, "note", {"seq": 2})
        assert new_epoch != epoch
        assert await streams.since(room, epoch, offset) is None
        assert await streams.since(room, new_epoch, new_offset) == []
    finally:
        await client.aclose()


async def test_redis_streams_gap_starts_a_new_epoch(redis):
    """An event that could not be logged (Redis away) makes the next append a new epoch."""
    client = aioredis.from_url(redis.url)
    try:
        room = uuid.uuid4().hex
        streams = RedisStreams(client)
        epoch, offset = await streams.append(room, "note", {"seq": 1})
        broken = RedisStreams(aioredis.from_url("redis://127.0.0.1:1/0"))
        assert await broken.append(room, "note", {"seq": 2}) is None
        broken.redis, broken._script = client, streams._script
        new_epoch, _ = await broken.append(room, "note", {"seq": 3})
        assert new_epoch != epoch
        assert await streams.since(room, epoch, offset) is None
    finally:
        await client.aclose()


@pytest.mark.realtime
async def test_spectator_recovers_missed_notes_in_one_process(server):
    """One process (in-process streams): a spectator drops out while a player plays and
    rejoins with its last offset: it gets exactly the notes it missed."""
    host = await connected(server.url, "host")
    info = await upload_piece(host, chorale_midi("bach/bwv66.6"), title="recovery one")
    room_id = (
        await host.call(
            "room:create",
            {"piece_id": info["id"], "mode": "duet", "tempo_bpm": 120, "count_in_beats": 0},
        )
    )["room"]["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
    listener = await connected(server.url, "listener")
    await listener.call("room:join", {"room_id": room_id, "role": "spectator"})
    started = await host.call("room:start", {"room_id": room_id})
    await listener.wait_for("room:started", timeout=5)
    t = started["start_at"]

    async def play(pitch: int) -> int:
        ack = await host.call(
            "note", {"room_id": room_id, "type": "on", "pitch": pitch, "velocity": 80, "t": t}
        )
        return ack["seq"]

    await asyncio.sleep(max(0.0, (t - host.server_now()) / 1000))
    before = [await play(60 + i) for i in range(3)]
    await listener.wait_for("note", lambda e: e["seq"] == before[-1], timeout=5)
    last = listener.received["note"][-1]
    assert last["seq"] == before[-1] and last["offset"] and last["epoch"]
    await listener.disconnect()
    during = [await play(70 + i) for i in range(4)]

    back = TuttiClient(server.url)
    back.token, back.user = listener.token, listener.user
    await back.connect(device_id="again")
    joined = await back.call(
        "room:join",
        {
            "room_id": room_id,
            "role": "spectator",
            "recover": {"epoch": last["epoch"], "offset": last["offset"]},
        },
    )
    assert joined["recovered"] is True
    notes = [m["data"]["seq"] for m in joined["missed"] if m["event"] == "note"]
    assert notes == during
    assert joined["room"]["phase"] in {"counting_in", "playing"}
    stale = await back.call("room:leave", {"room_id": room_id})
    assert stale["left"] is True
    again = await back.call(
        "room:join",
        {"room_id": room_id, "role": "spectator", "recover": {"epoch": "x" * 16, "offset": "1-1"}},
    )
    assert again["recovered"] is False and again["missed"] == []
    assert again["room"]["room_id"] == room_id
    refused = await back.sio.call(
        "room:join", {"room_id": room_id, "recover": {"epoch": "e", "offset": "soon"}}
    )
    assert refused["error"]["code"] == "invalid_value"
    refused = await back.sio.call(
        "room:join", {"room_id": room_id, "recover": {"epoch": "e", "offset": "1-1", "x": 1}}
    )
    assert refused["error"]["code"] == "unknown_field"
    await host.call("room:end", {"room_id": room_id})
    for client in (host, back):
        await client.disconnect()


class _CutAfterFirstScript:
    """A TCP proxy to Redis that, once, lets Redis run the first ``EVALSHA`` and then drops
    the connection before its reply reaches the client: a client that retries on
    ``ConnectionError`` sends the pipeline again."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.armed = True

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _handle(self, client_reader, client_writer) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        cut = asyncio.Event()

        async def up() -> None:
            while data := await client_reader.read(65536):
                if self.armed and b"EVALSHA" in data.upper():
                    self.armed = False
                    cut.set()
                redis_writer.write(data)
                await redis_writer.drain()

        async def down() -> None:
            while data := await redis_reader.read(65536):
                if cut.is_set():
                    return  # Redis ran it; the reply goes down with the connection
                client_writer.write(data)
                await client_writer.drain()

        pumps = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        client_writer.close()
        redis_writer.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize("retrying", [True, False], ids=["directory client", "streams"])
async def test_an_append_cut_off_before_its_reply_is_logged_once(redis, retrying):
    """The cluster's recovery streams (``RoomDirectory.streams``) never log an event twice:
    their client does not retry. The directory's own client (which retries) shows what a
    retried append does through the same cut."""
    from server.realtime.room_directory import RoomDirectory

    room = uuid.uuid4().hex
    direct = aioredis.from_url(redis.url)
    proxy = _CutAfterFirstScript(int(redis.url.rsplit(":", 1)[1].split("/")[0]))
    directory = RoomDirectory(await proxy.start())
    try:
        streams = RedisStreams(directory.redis) if retrying else directory.streams()
        await direct.script_load(streams._script.script)  # EVALSHA runs at the first try
        logged = await streams.append(room, "note", {"room_id": room, "seq": 1})
        assert not proxy.armed, "the proxy never cut the connection"
        count = await direct.xlen(f"tutti:room:{room}:stream")
        if retrying:
            assert count == 2 and logged is not None  # the hazard: a retry writes again
        else:
            assert count == 1 and logged is None  # a gap, never a second copy
    finally:
        await directory.stop()
        await direct.aclose()
        proxy.close()
