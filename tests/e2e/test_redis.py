"""``tutti serve --redis-url``: Socket.IO fan-out goes through a real Redis server."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.play import connected


async def test_notes_relay_through_redis(fresh_server, redis):
    server = fresh_server("--redis-url", redis.url)
    a = await connected(server.url, "a")
    b = await connected(server.url, "b")
    room_id = (await a.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    for client in (a, b):
        await client.call("room:join", {"room_id": room_id, "role": "player"})
    await a.call("room:start", {"room_id": room_id})

    r = aioredis.from_url(redis.url)
    channels = await r.pubsub_channels()
    # The server subscribed to this room's channel (and its users' channels), nothing more.
    assert f"tutti:sio:/:{room_id}".encode() in channels
    monitor_before = (await r.info("stats"))["total_commands_processed"]

    t = a.server_now()
    ack = await a.call(
        "note", {"room_id": room_id, "type": "on", "pitch": 64, "velocity": 90, "t": t}
    )
    heard = await b.wait_for("note", timeout=5)
    assert heard["pitch"] == 64 and heard["seq"] == ack["seq"] and heard["user_id"] == a.user["id"]
    assert (await r.info("stats"))["total_commands_processed"] > monitor_before  # it PUBLISHed
    await r.aclose()
    for client in (a, b):
        await client.disconnect()
