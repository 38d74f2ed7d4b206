"""Presence through real ``tutti serve`` processes and real Socket.IO clients (issue 3).

A user U has two devices ("phone", "laptop": two connections with one token);
a partner P has a third connection. Each client folds the ``presence:state``
and ``presence:diff`` events it receives, in order, into its view of each
topic, the way a Phoenix client does (:func:`rooms.presence.apply_diff`).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from rooms.presence import META_FIELDS, apply_diff, canonical
from server.clients.room_client import TuttiClient
from tests.servers import free_port


class Device(TuttiClient):
    """A client that keeps every presence event in arrival order."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.presence: list[tuple[str, dict]] = []

    async def _on_any(self, event: str, data: Any = None) -> None:
        if event.startswith("presence:"):
            self.presence.append((event, data))
        await super()._on_any(event, data)

    def view(self, topic: str) -> dict | None:
        """This client's state of ``topic``: the last presence:state, then the diffs after it."""
        state = None
        for event, data in self.presence:
            if data["topic"] != topic:
                continue
            if event == "presence:state":
                state = canonical(data["state"])
            elif state is not None:
                state = apply_diff(state, data)
        return state

    async def until(self, topic: str, check: Callable[[dict], bool], timeout: float = 10.0):
        """Wait until this client's view of ``topic`` passes ``check``; return the view."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.view(topic)
            if state is not None and check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"view of {topic} never matched; last: {state}")
            await asyncio.sleep(0.02)

    def topics(self) -> set[str]:
        return {data["topic"] for _, data in self.presence}


async def device_of(url: str, owner: Device | None, name: str, device_id: str) -> Device:
    """Connect a device; with ``owner``, as the same user (same token)."""
    client = Device(url)
    if owner is not None:
        client.token, client.user = owner.token, owner.user
    else:
        await client.login_guest(name)
    await client.connect(device_id=device_id, device_name=f"{name}'s {device_id}")
    return client


def devices(state: dict, user_id: str) -> dict[str, dict]:
    """device_id -> meta of ``user_id`` in ``state`` ({} when absent)."""
    return {m["device_id"]: m for m in state.get(user_id, {"metas": []})["metas"]}


def is_diff(
    topic: str, side: str, user_id: str, device_id: str, *, only: bool = False
) -> Callable[[dict], bool]:
    """A diff of ``topic`` whose ``side`` ("joins"/"leaves") has ``user_id``'s ``device_id``;
    with ``only``, a diff with nothing on the other side (a pure join or leave)."""
    other = "leaves" if side == "joins" else "joins"

    def check(d: dict) -> bool:
        if d["topic"] != topic or (only and d[other]):
            return False
        metas = d[side].get(user_id, {"metas": []})["metas"]
        return any(m["device_id"] == device_id for m in metas)

    return check


async def test_devices_and_partner_follow_connects_rooms_start_and_drops(server):
    phone = await device_of(server.url, None, "Ursula", "phone")
    u = phone.user["id"]
    user_t = f"user:{u}"

    # The first device gets its user's state: itself.
    state = await phone.wait_for("presence:state", lambda d: d["topic"] == user_t, timeout=5)
    assert list(state["state"]) == [u]
    [meta] = state["state"][u]["metas"]
    assert set(meta) == set(META_FIELDS)
    assert meta["device_id"] == "phone" and meta["device_name"] == "Ursula's phone"
    assert meta["room_id"] is None and meta["status"] == "idle"
    assert isinstance(meta["ref"], str) and abs(meta["online_at"] - time.time() * 1000) < 10_000

    # The second device: the first gets a join of it alone, it gets the state of both.
    laptop = await device_of(server.url, phone, "Ursula", "laptop")
    joined = await phone.wait_for(
        "presence:diff", is_diff(user_t, "joins", u, "laptop", only=True), 5
    )
    assert joined["leaves"] == {} and list(devices(joined["joins"], u)) == ["laptop"]
    state = await laptop.wait_for("presence:state", lambda d: d["topic"] == user_t, timeout=5)
    assert set(devices(state["state"], u)) == {"phone", "laptop"}
    await asyncio.sleep(0.1)
    assert laptop.received["presence:diff"] == []  # its own join came as the state

    partner = await device_of(server.url, None, "Pat", "desk")
    p = partner.user["id"]
    state = await partner.wait_for("presence:state", lambda d: d["topic"] == f"user:{p}", 5)
    assert list(state["state"]) == [p]

    # U's laptop opens a room and joins it as a player.
    room_id = (
        await laptop.call("room:create", {"mode": "free", "count_in_beats": 0, "name": "pres"})
    )["room"]["room_id"]
    room_t = f"room:{room_id}"
    await laptop.call("room:join", {"room_id": room_id, "role": "player"})
    state = await laptop.wait_for("presence:state", lambda d: d["topic"] == room_t, timeout=5)
    assert list(state["state"]) == [u]
    assert devices(state["state"], u)["laptop"]["room_id"] == room_id
    # The phone sees the laptop's meta change: a leave of the old one, a join of the new one.
    moved = await phone.wait_for(
        "presence:diff",
        lambda d: (
            is_diff(user_t, "joins", u, "laptop")(d)
            and devices(d["joins"], u)["laptop"]["room_id"] == room_id
        ),
    )
    assert devices(moved["leaves"], u)["laptop"]["room_id"] is None
    assert (
        devices(moved["leaves"], u)["laptop"]["ref"] != devices(moved["joins"], u)["laptop"]["ref"]
    )

    # P joins: both see each other in the room topic, U's laptop idle before the start.
    await partner.call("room:join", {"room_id": room_id, "role": "player"})
    state = await partner.wait_for("presence:state", lambda d: d["topic"] == room_t, timeout=5)
    assert set(state["state"]) == {u, p}
    assert list(devices(state["state"], u)) == ["laptop"]  # only U's device in the room
    assert devices(state["state"], u)["laptop"]["room_id"] == room_id
    assert devices(state["state"], u)["laptop"]["status"] == "idle"
    assert devices(state["state"], p)["desk"]["status"] == "idle"
    await laptop.wait_for("presence:diff", is_diff(room_t, "joins", p, "desk"), 5)

    # The host starts: everyone's status turns "practicing".
    await laptop.call("room:start", {"room_id": room_id})

    def both_practicing(state: dict) -> bool:
        return (
            set(state) == {u, p}
            and devices(state, u)["laptop"]["status"] == "practicing"
            and devices(state, p)["desk"]["status"] == "practicing"
        )

    await laptop.until(room_t, both_practicing)
    await partner.until(room_t, both_practicing)
    state = await phone.until(
        user_t, lambda s: devices(s, u).get("laptop", {}).get("status") == "practicing"
    )
    assert devices(state, u)["phone"]["status"] == "idle" and set(state) == {u}

    # The laptop drops: the phone gets a leave of the laptop, U stays present via the phone.
    await laptop.disconnect()
    gone = await phone.wait_for(
        "presence:diff", is_diff(user_t, "leaves", u, "laptop", only=True), 5
    )
    assert gone["joins"] == {}
    state = await phone.until(user_t, lambda s: "laptop" not in devices(s, u))
    assert list(devices(state, u)) == ["phone"]
    # P sees U leave the room: the laptop was U's only device in it.
    await partner.wait_for("presence:diff", is_diff(room_t, "leaves", u, "laptop", only=True), 5)
    state = await partner.until(room_t, lambda s: u not in s)
    assert set(state) == {p}

    # The phone takes U's part back, then drops too: P sees U come and go.
    await phone.call("room:join", {"room_id": room_id, "role": "player"})
    state = await partner.until(room_t, lambda s: "phone" in devices(s, u))
    assert devices(state, u)["phone"]["status"] == "practicing"
    await phone.disconnect()
    await partner.wait_for("presence:diff", is_diff(room_t, "leaves", u, "phone", only=True), 5)
    await partner.until(room_t, lambda s: set(s) == {p})

    # Both devices of U are gone: a new device of U sees only itself.
    tablet = await device_of(server.url, phone, "Ursula", "tablet")
    state = await tablet.wait_for("presence:state", lambda d: d["topic"] == user_t, timeout=5)
    assert list(devices(state["state"], u)) == ["tablet"]

    # Nobody heard of topics that aren't theirs.
    assert phone.topics() == {user_t, room_t}
    assert laptop.topics() == {user_t, room_t}
    assert partner.topics() == {f"user:{p}", room_t}
    for client in (partner, tablet):
        await client.disconnect()


async def test_a_spectator_is_listening(server):
    laptop = await device_of(server.url, None, "Host", "laptop")
    u = laptop.user["id"]
    fan = await device_of(server.url, None, "Fan", "phone")
    p = fan.user["id"]
    room_id = (await laptop.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    room_t = f"room:{room_id}"
    await laptop.call("room:join", {"room_id": room_id, "role": "player"})
    await fan.call("room:join", {"room_id": room_id, "role": "spectator"})

    state = await fan.wait_for("presence:state", lambda d: d["topic"] == room_t, timeout=5)
    assert devices(state["state"], p)["phone"]["status"] == "listening"
    assert devices(state["state"], u)["laptop"]["status"] == "idle"
    state = await laptop.until(room_t, lambda s: p in s)
    listening = devices(state, p)["phone"]
    assert listening["status"] == "listening" and listening["room_id"] == room_id
    own = await fan.until(f"user:{p}", lambda s: devices(s, p)["phone"]["room_id"] == room_id)
    assert devices(own, p)["phone"]["status"] == "listening"

    # The start makes the player practice; the spectator keeps listening, unchanged.
    await laptop.call("room:start", {"room_id": room_id})
    state = await fan.until(room_t, lambda s: devices(s, u)["laptop"]["status"] == "practicing")
    assert devices(state, p)["phone"] == listening

    # The spectator leaves the room: out of the room topic, idle in its own.
    await fan.call("room:leave", {"room_id": room_id})
    await laptop.until(room_t, lambda s: set(s) == {u})
    own = await fan.until(f"user:{p}", lambda s: devices(s, p)["phone"]["room_id"] is None)
    assert devices(own, p)["phone"]["status"] == "idle"
    for client in (fan, laptop):
        await client.disconnect()


async def test_two_tabs_of_one_device_share_its_meta(server):
    """The newest connection of a device id owns its meta; when it drops, an older one
    still connected takes over; the device leaves with its last connection."""
    laptop = await device_of(server.url, None, "Tab", "laptop")
    u = laptop.user["id"]
    user_t = f"user:{u}"
    first = await device_of(server.url, laptop, "Tab", "phone")
    second = await device_of(server.url, laptop, "Tab", "phone")
    state = await laptop.until(user_t, lambda s: set(devices(s, u)) == {"laptop", "phone"})
    assert len(state[u]["metas"]) == 2  # one meta for the phone, not one per tab
    owned = devices(state, u)["phone"]["ref"]

    await second.disconnect()  # the first tab takes the phone over: a new ref, still there
    state = await laptop.until(user_t, lambda s: devices(s, u).get("phone", {}).get("ref") != owned)
    assert set(devices(state, u)) == {"laptop", "phone"}
    await first.disconnect()
    await laptop.wait_for("presence:diff", is_diff(user_t, "leaves", u, "phone", only=True), 5)
    await laptop.until(user_t, lambda s: set(devices(s, u)) == {"laptop"})
    await laptop.disconnect()


async def test_presence_across_processes_and_a_killed_process(fresh_server, redis, postgres):
    # As deployed: the processes share Redis, the signing key and the database.
    database = postgres.create_database(f"presence_{uuid.uuid4().hex[:12]}")
    shared = (
        "--redis-url",
        redis.url,
        "--secret-key",
        "presence-test-key",
        "--database-url",
        database,
    )
    one = fresh_server(*shared)
    two = fresh_server(*shared)

    phone = await device_of(one.url, None, "Ursula", "phone")
    u = phone.user["id"]
    user_t = f"user:{u}"
    await phone.until(user_t, lambda s: list(devices(s, u)) == ["phone"])

    # The laptop on the other process sees the phone in its state; the phone sees it join.
    laptop = await device_of(two.url, phone, "Ursula", "laptop")
    state = await laptop.wait_for("presence:state", lambda d: d["topic"] == user_t, timeout=5)
    assert set(devices(state["state"], u)) == {"phone", "laptop"}
    await phone.wait_for("presence:diff", is_diff(user_t, "joins", u, "laptop", only=True), 5)
    await phone.until(user_t, lambda s: set(devices(s, u)) == {"phone", "laptop"})

    # A change on process two reaches the phone on process one.
    room_id = (await laptop.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    await laptop.call("room:join", {"room_id": room_id, "role": "player"})
    await phone.until(user_t, lambda s: devices(s, u)["laptop"]["room_id"] == room_id)

    r = aioredis.from_url(redis.url, decode_responses=True)
    try:
        assert set(await r.hkeys(f"tutti:presence:user:{u}")) == {"phone", "laptop"}
        assert len(await r.hkeys(f"tutti:presence:room:{room_id}")) == 1

        # A third process stops gracefully: its device leaves at once, no TTL wait.
        three = fresh_server(*shared)
        watch = await device_of(three.url, phone, "Ursula", "watch")
        await phone.until(user_t, lambda s: "watch" in devices(s, u))
        stopped_at = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, three.stop)
        await phone.wait_for("presence:diff", is_diff(user_t, "leaves", u, "watch", only=True), 10)
        assert time.monotonic() - stopped_at < 10
        assert set(await r.hkeys(f"tutti:presence:user:{u}")) == {"phone", "laptop"}
        await watch.disconnect()

        # Process two dies without a word: its laptop leaves within 30 s.
        killed_at = time.monotonic()
        two.stop(signal.SIGKILL)
        gone = await phone.wait_for(
            "presence:diff", is_diff(user_t, "leaves", u, "laptop", only=True), timeout=30
        )
        elapsed = time.monotonic() - killed_at
        print(f"\nthe killed process's device left after {elapsed:.1f} s")
        assert elapsed < 30
        assert gone["joins"] == {}
        await phone.until(user_t, lambda s: list(devices(s, u)) == ["phone"])
        assert await r.hkeys(f"tutti:presence:user:{u}") == ["phone"]
        assert not await r.exists(f"tutti:presence:room:{room_id}")

        # A new device on the surviving process sees the phone only.
        tablet = await device_of(one.url, phone, "Ursula", "tablet")
        state = await tablet.wait_for("presence:state", lambda d: d["topic"] == user_t, 5)
        assert set(devices(state["state"], u)) == {"phone", "tablet"}
        for client in (phone, tablet):
            await client.disconnect()
    finally:
        await r.aclose()


async def test_rooms_work_while_redis_is_away(fresh_server):
    """Presence errors are logged, never passed on: rooms run with Redis unreachable."""
    server = fresh_server("--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    a = await device_of(server.url, None, "Ada", "phone")
    room_id = (await a.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"][
        "room_id"
    ]
    joined = await a.call("room:join", {"room_id": room_id, "role": "player"})
    assert joined["room"]["members"][0]["user_id"] == a.user["id"]
    assert (await a.call("room:start", {"room_id": room_id}))["room_id"] == room_id
    left = await a.call("room:leave", {"room_id": room_id})
    assert left["left"] is True
    await a.disconnect()
    assert "presence: writing" in server.log.read_text()  # logged, not raised
