"""Per-room Redis fan-out (server/realtime/fanout.py) between real server processes."""

from __future__ import annotations

import aiohttp

from tests.play import connected


async def fanout_stats(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/health") as resp:
        return (await resp.json())["fanout"]


async def test_a_process_without_members_receives_none_of_a_rooms_traffic(fresh_server, redis):
    busy = fresh_server("--redis-url", redis.url)
    quiet = fresh_server("--redis-url", redis.url)
    a, b = await connected(busy.url, "a"), await connected(busy.url, "b")
    bystander = await connected(quiet.url, "bystander")
    room_id = (await a.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    for client in (a, b):
        await client.call("room:join", {"room_id": room_id, "role": "player"})
    await a.call("room:start", {"room_id": room_id})
    before = await fanout_stats(quiet.url)
    for i in range(40):
        await a.call(
            "note",
            {
                "room_id": room_id,
                "type": "on",
                "pitch": 60 + i % 12,
                "velocity": 80,
                "t": a.server_now(),
            },
        )
    await b.wait_for("note", lambda n: n["seq"] == 40, timeout=5)
    busy_stats = await fanout_stats(busy.url)
    quiet_stats = await fanout_stats(quiet.url)
    assert busy_stats["published"] >= 40  # every relay also went to the room's channel
    assert quiet_stats["received"] == before["received"] == 0
    assert busy_stats["channels"] >= 1 and quiet_stats["channels"] >= 1  # its user's channel
    for client in (a, b, bystander):
        await client.disconnect()
