"""Logbook sync against real ``tutti serve`` processes and real Socket.IO clients.

Push/pull semantics (duplicates, gaps, reordering, lost acks, refused
mutations), tombstones, per-field conflicts with skewed device clocks, room
logs in the stream, pokes (also across processes through Redis), REST and
Socket.IO agreeing, racing pushes, and a property test: three devices of one
user with random edits, offline periods and faulty pushes end in exactly the
server's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from server.clients.room_client import TuttiClient
from server.clients.sync_client import SyncDevice, server_state
from server.clients.sync_transports import TransportError
from tests.conftest import FAST
from tests.servers import start_server

# --------------------------------------------------------------------------- helpers


async def new_user(url: str, name: str = "musician") -> str:
    """A fresh guest; returns the access token."""
    client = TuttiClient(url)
    await client.login_guest(name)
    return client.token


async def socket(url: str, token: str) -> TuttiClient:
    """A raw Socket.IO connection of the token's user."""
    client = TuttiClient(url)
    client.token = token
    await client.connect()
    return client


async def rest(url: str, token: str | None, method: str, path: str, **kwargs) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url + path, headers=headers, **kwargs) as resp,
    ):
        body = await resp.json(content_type=None) if resp.status != 204 else None
        return resp.status, body


async def push_socket(client: TuttiClient, client_id: str, mutations: list[dict]) -> dict:
    return await client.sio.call("sync:push", {"client_id": client_id, "mutations": mutations})


async def pull_all(url: str, token: str) -> list[dict]:
    status, body = await rest(url, token, "GET", "/api/sync/pull?cursor=0&limit=1000")
    assert status == 200 and not body["has_more"], body
    return body["changes"]


def uid(name: str = "") -> str:
    """A fresh row id: ids are global primary keys, so tests never reuse one."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


def goal(mid: int, gid: str, **fields) -> dict:
    return {"mutation_id": mid, "entity": "goal", "op": "put", "id": gid, "fields": fields}


def new_goal(mid: int, gid: str, title: str = "Scales") -> dict:
    return goal(mid, gid, title=title)


async def devices(url: str, token: str, *specs: dict) -> list[SyncDevice]:
    out = []
    for i, spec in enumerate(specs):
        device = SyncDevice(url, token, name=f"device{i}", **spec)
        await device.connect()
        out.append(device)
    return out


async def settle(*devs: SyncDevice) -> None:
    for device in devs:
        assert await device.push()
    for device in devs:
        await device.pull()


async def close(*devs: SyncDevice) -> None:
    for device in devs:
        await device.close()


def live(state: dict) -> dict:
    return {k: v["fields"] for k, v in state.items() if not v["deleted"]}


# --------------------------------------------------------------------------- push semantics


async def test_push_is_applied_once_and_a_duplicate_is_skipped(server):
    token = await new_user(server.url)
    sock = await socket(server.url, token)
    g1, g2, g3 = uid("g1"), uid("g2"), uid("g3")
    muts = [new_goal(1, g1), new_goal(2, g2), goal(3, g1, progress=40)]
    first = await push_socket(sock, "phone", muts)
    assert first == {"last_mutation_id": 3, "version": 3}
    again = await push_socket(sock, "phone", muts)  # the same push again (a retry)
    assert again == {"last_mutation_id": 3, "version": 3}
    changes = await pull_all(server.url, token)
    assert [(c["id"], c["version"]) for c in changes] == [(g2, 2), (g1, 3)]
    assert changes[1]["fields"]["progress"] == 40 and changes[1]["fields"]["title"] == "Scales"
    # Another client of the same user has its own numbering.
    other = await push_socket(sock, "laptop", [new_goal(1, g3)])
    assert other == {"last_mutation_id": 1, "version": 4}
    await sock.disconnect()


async def test_a_gap_is_refused_and_the_client_resends_from_last(server):
    token = await new_user(server.url)
    sock = await socket(server.url, token)
    a, b, c, d = (uid(x) for x in "abcd")
    assert (await push_socket(sock, "c", [new_goal(1, a)]))["last_mutation_id"] == 1
    gap = await push_socket(sock, "c", [new_goal(3, c), new_goal(4, d)])
    assert gap["last_mutation_id"] == 1 and gap["version"] == 1
    assert gap["error"]["code"] == "mutation_gap" and gap["error"]["mutation_id"] == 3
    assert [ch["id"] for ch in await pull_all(server.url, token)] == [a]  # none of it applied
    resent = await push_socket(sock, "c", [new_goal(2, b), new_goal(3, c), new_goal(4, d)])
    assert resent == {"last_mutation_id": 4, "version": 4}
    assert [ch["id"] for ch in await pull_all(server.url, token)] == [a, b, c, d]
    await sock.disconnect()


async def test_reordered_pushes_apply_in_mutation_order_exactly_once(server):
    token = await new_user(server.url)
    sock = await socket(server.url, token)
    x = uid("x")
    early = [new_goal(1, x), goal(2, x, title="first")]
    late = [goal(3, x, title="second"), goal(4, x, progress=10)]
    # The later push overtakes the earlier one on the network.
    assert (await push_socket(sock, "c", late))["error"]["code"] == "mutation_gap"
    assert (await push_socket(sock, "c", early))["last_mutation_id"] == 2
    assert (await push_socket(sock, "c", late))["last_mutation_id"] == 4
    # A stale copy of the first push arrives last: skipped, it must not undo "second".
    assert (await push_socket(sock, "c", early)) == {"last_mutation_id": 4, "version": 4}
    # Mutations out of order inside one push are taken in id order.
    swapped = [goal(6, x, progress=60), goal(5, x, progress=50)]
    assert (await push_socket(sock, "c", swapped))["last_mutation_id"] == 6
    [change] = await pull_all(server.url, token)
    assert change["fields"]["title"] == "second" and change["fields"]["progress"] == 60
    assert change["version"] == 6
    await sock.disconnect()


class LostAck:
    """A transport whose first push is applied by the server but whose answer is lost."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.lost = 0

    async def push(self, body):
        answer = await self.inner.push(body)
        if self.lost == 0:
            self.lost += 1
            raise TransportError("ack lost")
        return answer

    async def pull(self, cursor, limit):
        return await self.inner.pull(cursor, limit)


async def test_retry_after_a_lost_ack_applies_nothing_twice(server):
    token = await new_user(server.url)
    [phone] = await devices(server.url, token, {})
    phone.transport = LostAck(phone.transport)
    gid = phone.create("goal", {"title": "Etude 3"})
    phone.put("goal", gid, {"progress": 10})
    log_id = phone.log_practice("technique", 20)
    assert await phone.push()  # first attempt: applied, ack lost; the retry is skipped
    assert phone.transport.lost == 1 and phone.outbox == []
    await phone.pull()
    changes = await pull_all(server.url, token)
    assert sorted(c["id"] for c in changes) == sorted([gid, log_id])
    assert max(c["version"] for c in changes) == 3  # three writes, each once
    assert phone.view() == live(phone.state())
    await close(phone)


async def test_a_refused_mutation_is_consumed_and_the_push_stops_there(server):
    token = await new_user(server.url)
    sock = await socket(server.url, token)
    g = uid("g")
    muts = [new_goal(1, g), goal(2, g, progress=500), goal(3, g, progress=30)]
    answer = await push_socket(sock, "c", muts)
    assert answer["last_mutation_id"] == 2 and answer["version"] == 1
    assert answer["error"]["code"] == "out_of_range" and answer["error"]["mutation_id"] == 2
    [change] = await pull_all(server.url, token)
    assert change["fields"]["progress"] == 0  # 2 changed nothing, 3 not applied yet
    # The client drops 2 and sends the rest; a retry of 2 is just "already applied".
    assert (await push_socket(sock, "c", muts))["last_mutation_id"] == 3
    [change] = await pull_all(server.url, token)
    assert change["fields"]["progress"] == 30 and change["version"] == 2
    await sock.disconnect()


async def test_the_device_drops_a_refused_mutation_and_its_optimistic_effect(server):
    token = await new_user(server.url)
    [phone] = await devices(server.url, token, {})
    gid = phone.create("goal", {"title": "Scales"})
    phone.put("goal", gid, {"status": "someday"})  # not a goal status
    phone.put("goal", gid, {"progress": 25})
    assert phone.view()[("goal", gid)]["status"] == "someday"
    assert await phone.push()
    await phone.pull()
    [(mutation, error)] = phone.rejected
    assert mutation["mutation_id"] == 2 and error["code"] == "invalid_value"
    assert phone.view()[("goal", gid)]["status"] == "active"
    assert phone.view()[("goal", gid)]["progress"] == 25
    await close(phone)


def put(entity: str, fields: Any, row_id: str | None = "g") -> dict:
    m = {"entity": entity, "op": "put", "fields": fields}
    return m if row_id is None else {**m, "id": row_id}


LOG = {"activity_type": "technique", "start_time": "2025-01-01T10:00:00Z", "duration_seconds": 5}


def log(**fields: Any) -> dict:
    return put("logbook_entry", {**LOG, **fields}, "l")


BAD_MUTATIONS = [
    (put("goal", {"title": 5}), "wrong_type"),
    (put("goal", {"title": ""}), "invalid_value"),
    (put("goal", {"title": "x", "colour": 1}), "unknown_field"),
    (put("goal", {"progress": 10}), "missing_field"),
    (put("goal", {"title": None}), "wrong_type"),
    (put("goal", {"title": "x", "target_date": "May 1"}), "invalid_value"),
    (put("goal", {"title": "x", "target_date": "2025-02-30"}), "invalid_value"),
    (put("goal", {"title": "x", "progress": -1}), "out_of_range"),
    (put("goal", {"title": "x", "progress": "50"}), "wrong_type"),
    (put("goal", {"title": "x"}, None), "missing_field"),
    (put("goal", {"title": "x"}, "x" * 65), "invalid_value"),
    ({"entity": "goal", "op": "delete", "id": "nope"}, "not_found"),
    ({"entity": "goal", "op": "delete", "id": "g", "fields": {"title": "x"}}, "invalid_value"),
    ({"entity": "goal", "op": "upsert", "id": "g", "fields": {}}, "invalid_value"),
    (put("lesson", {}), "invalid_value"),
    ({"op": "put", "id": "g", "fields": {}}, "missing_field"),
    (put("goal", [1]), "wrong_type"),
    (put("repertoire_item", {"work_title": "x", "status": "done"}, "r"), "invalid_value"),
    (put("repertoire_item", {"work_title": "x", "piece_id": "nope"}, "r"), "unknown_piece"),
    (put("practice_template", {"name": "warm-up"}, "t"), "missing_field"),
    (log(start_time="2025-01-01T10:00:00"), "invalid_value"),  # no UTC offset
    (log(start_time="yesterday"), "invalid_value"),
    (log(duration_seconds=-5), "out_of_range"),
    (log(duration_seconds=10**9), "out_of_range"),
    (log(activity_type="napping"), "invalid_value"),
    (log(self_rating=6), "out_of_range"),
    (log(self_rating=True), "wrong_type"),
    (log(focus_areas=["tone"] * 21), "invalid_value"),
    (log(end_time="2025-01-01T09:00:00Z"), "invalid_value"),  # before the start
    (log(source="room"), "invalid_value"),
    (log(result={}), "unknown_field"),
    (log(notes="x" * 10_001), "invalid_value"),
    (put("preferences", {"a": 1}, "you"), "invalid_value"),
    (put("preferences", {"": 1}, None), "invalid_value"),
    (put("preferences", {"big": "x" * 20_000}, None), "invalid_value"),
]


@pytest.mark.parametrize(("mutation", "code"), BAD_MUTATIONS)
async def test_invalid_mutations_get_a_specific_code_and_change_nothing(server, mutation, code):
    token = await new_user(server.url)
    mutation = dict(mutation)
    if mutation.get("id") in ("g", "r", "l"):
        mutation["id"] = uid(mutation["id"])
    body = {"client_id": "c", "mutations": [{"mutation_id": 1, **mutation}]}
    status, answer = await rest(server.url, token, "POST", "/api/sync/push", json=body)
    assert status == 200
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["mutation_id"] == 1
    assert answer == {"last_mutation_id": 1, "version": 0, "error": answer["error"]}
    assert await pull_all(server.url, token) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "wrong_type"),
        ({"mutations": []}, "missing_field"),
        ({"client_id": "", "mutations": []}, "invalid_value"),
        ({"client_id": "c", "mutations": {}}, "wrong_type"),
        ({"client_id": "c", "mutations": [new_goal(i, "g") for i in range(1, 102)]},
         "too_many_mutations"),
        ({"client_id": "c", "mutations": [{"entity": "goal"}]}, "missing_field"),
        ({"client_id": "c", "mutations": [{**new_goal(1, "g"), "mutation_id": "1"}]}, "wrong_type"),
        ({"client_id": "c", "mutations": [{**new_goal(1, "g"), "mutation_id": True}]},
         "wrong_type"),
        ({"client_id": "c", "mutations": [{**new_goal(1, "g"), "mutation_id": 0}]}, "out_of_range"),
        ({"client_id": "c", "mutations": [new_goal(1, "g")], "extra": 1}, "unknown_field"),
    ],
)  # fmt: skip
async def test_a_refused_push_envelope_changes_nothing_on_rest_and_socketio(server, body, code):
    token = await new_user(server.url)
    status, answer = await rest(server.url, token, "POST", "/api/sync/push", json=body)
    assert status == 400 and answer["error"]["code"] == code, answer
    sock = await socket(server.url, token)
    ack = await sock.sio.call("sync:push", body)
    assert ack == {"error": {"code": code, "message": ack["error"]["message"]}}
    await sock.disconnect()
    assert await pull_all(server.url, token) == []


async def test_push_and_pull_need_a_valid_token(server):
    for method, path in (("POST", "/api/sync/push"), ("GET", "/api/sync/pull")):
        status, body = await rest(server.url, None, method, path, json={})
        assert status == 401 and body["error"]["code"] == "missing_token"
        status, body = await rest(server.url, "nonsense", method, path, json={})
        assert status == 401 and body["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cursor=-1", "out_of_range"),
        ("cursor=abc", "wrong_type"),
        ("cursor=1.5", "wrong_type"),
        ("limit=0", "out_of_range"),
        ("limit=1001", "out_of_range"),
        ("limit=ten", "wrong_type"),
    ],
)
async def test_pull_validates_cursor_and_limit_on_rest_and_socketio(server, query, code):
    token = await new_user(server.url)
    status, body = await rest(server.url, token, "GET", f"/api/sync/pull?{query}")
    assert status == 400 and body["error"]["code"] == code
    name, raw = query.split("=")
    value: Any = raw
    if raw.lstrip("-").isdigit():
        value = int(raw)
    elif raw == "1.5":
        value = 1.5
    sock = await socket(server.url, token)
    ack = await sock.sio.call("sync:pull", {name: value})
    assert ack["error"]["code"] == code
    await sock.disconnect()


async def test_pull_pages_by_version_after_days_offline(server):
    token = await new_user(server.url)
    phone, tablet = await devices(server.url, token, {}, {})
    await tablet.disconnect()  # days offline
    ids = [phone.create("goal", {"title": f"goal {i}"}) for i in range(620)]
    for gid in ids[::3]:
        phone.put("goal", gid, {"progress": 50})
    for gid in ids[1::7]:
        phone.delete("goal", gid)
    assert await phone.push()
    await tablet.connect()
    calls = 0
    pull = tablet.transport.pull

    async def counting(cursor, limit):
        nonlocal calls
        calls += 1
        answer = await pull(cursor, limit)
        versions = [c["version"] for c in answer["changes"]]
        assert versions == sorted(versions) and len(versions) <= limit
        assert all(v > cursor for v in versions)
        return answer

    tablet.transport.pull = counting
    await tablet.pull(limit=200)
    assert calls >= 4
    state = await server_state(server.url, token)
    assert tablet.state() == state
    assert len(live(state)) == 620 - len(ids[1::7])
    assert all(state[("goal", gid)]["deleted"] for gid in ids[1::7])
    await close(phone, tablet)


# --------------------------------------------------------------------------- tombstones & conflicts


async def test_deletes_reach_every_device_and_a_put_on_a_tombstone_stays_deleted(server):
    token = await new_user(server.url)
    phone, laptop, tablet = await devices(server.url, token, {}, {"transport": "rest"}, {})
    gid = phone.create("goal", {"title": "Memorise the Bach"})
    lid = phone.log_practice("repertoire", 30, work_title="BWV 1007")
    await settle(phone, laptop, tablet)
    await tablet.disconnect()
    tablet.put("goal", gid, {"progress": 80})  # offline: it has not heard of the delete
    phone.delete("goal", gid)
    phone.delete("logbook_entry", lid)
    assert await phone.push()
    await laptop.pull()
    assert ("goal", gid) not in laptop.view() and ("logbook_entry", lid) not in laptop.view()
    tombstone = laptop.state()[("goal", gid)]
    assert tombstone["deleted"] is True and tombstone["fields"] == {}
    await tablet.connect()
    assert await tablet.push()  # its put reaches a tombstone: acknowledged, ignored
    await tablet.pull()
    assert ("goal", gid) not in tablet.view()
    state = await server_state(server.url, token)
    assert state[("goal", gid)]["deleted"] and state[("logbook_entry", lid)]["deleted"]
    for device in (phone, laptop, tablet):
        await device.pull()
        assert device.state() == state
    # Deleting again (a retried delete) is a no-op.
    phone.delete("goal", gid)
    assert await phone.push()
    assert await server_state(server.url, token) == state
    await close(phone, laptop, tablet)


async def test_offline_edits_of_different_fields_both_survive(server):
    token = await new_user(server.url)
    phone, laptop = await devices(
        server.url, token, {"clock_offset_s": 6 * 3600}, {"clock_offset_s": -2 * 3600}
    )
    gid = phone.create("goal", {"title": "Scales", "progress": 0})
    await settle(phone, laptop)
    await phone.disconnect()
    await laptop.disconnect()
    phone.put("goal", gid, {"title": "All major scales"})
    laptop.put("goal", gid, {"progress": 40, "status": "active"})
    await phone.connect()
    await laptop.connect()
    await settle(laptop, phone)
    await settle(laptop, phone)
    fields = (await server_state(server.url, token))[("goal", gid)]["fields"]
    assert fields["title"] == "All major scales" and fields["progress"] == 40
    assert phone.view() == laptop.view()
    await close(phone, laptop)


@pytest.mark.parametrize("ahead_first", [True, False])
async def test_same_field_the_later_server_applied_write_wins_whatever_the_clocks(
    server, ahead_first
):
    token = await new_user(server.url)
    ahead, behind = await devices(
        server.url, token, {"clock_offset_s": 5 * 3600}, {"clock_offset_s": -5 * 3600}
    )
    gid = ahead.create("repertoire_item", {"work_title": "Clair de lune"})
    await settle(ahead, behind)
    ahead.put("repertoire_item", gid, {"status": "polished"})
    behind.put("repertoire_item", gid, {"status": "learning"})
    first, second = (ahead, behind) if ahead_first else (behind, ahead)
    assert await first.push()
    assert await second.push()
    await settle(ahead, behind)
    expected = "learning" if ahead_first else "polished"
    state = await server_state(server.url, token)
    assert state[("repertoire_item", gid)]["fields"]["status"] == expected
    assert ahead.state() == behind.state() == state
    await close(ahead, behind)


async def test_a_device_clock_hours_ahead_does_not_change_the_order(server):
    token = await new_user(server.url)
    future, present = await devices(server.url, token, {"clock_offset_s": 9 * 3600}, {})
    a = future.log_practice("technique", 10)  # stamped 9 h in the future: data only
    await settle(future)
    b = present.log_practice("scales", 10)
    await settle(present, future)
    changes = await pull_all(server.url, token)
    assert [c["id"] for c in changes] == [a, b]  # server order, not the stamped times
    start_a = datetime.fromisoformat(changes[0]["fields"]["start_time"])
    assert start_a > datetime.now(UTC) + timedelta(hours=8)  # kept as given
    updated = [datetime.fromisoformat(c["fields"]["updated_at"]) for c in changes]
    assert all(abs(u - datetime.now(UTC)) < timedelta(minutes=5) for u in updated)
    # The skewed device edits later; its edit still lands after b in the stream.
    future.put("logbook_entry", b, {"notes": "slow practice"})
    await settle(future, present)
    changes = await pull_all(server.url, token)
    assert [c["id"] for c in changes] == [a, b]
    assert changes[1]["fields"]["notes"] == "slow practice"
    await close(future, present)


async def test_a_write_queued_before_close_survives_a_restart(server, tmp_path):
    token = await new_user(server.url)
    store = tmp_path / "phone.json"
    phone = SyncDevice(server.url, token, store=store)
    await phone.connect()
    lid = phone.log_practice("technique", 15, notes="written just before the app closed")
    await phone.close()  # closed before any push: the mutation is already on disk
    assert await pull_all(server.url, token) == []
    reopened = SyncDevice(server.url, token, store=store)
    assert reopened.client_id == phone.client_id and len(reopened.outbox) == 1
    await reopened.connect()
    assert await reopened.sync()
    [change] = await pull_all(server.url, token)
    assert change["id"] == lid and change["fields"]["notes"].startswith("written")
    # Reopening once more does not send it again.
    await reopened.close()
    again = SyncDevice(server.url, token, store=store)
    await again.connect()
    assert again.outbox == [] and await again.sync()
    assert len(await pull_all(server.url, token)) == 1
    await again.close()


# --------------------------------------------------------------------------- ownership


async def test_another_users_ids_are_not_found_and_untouched(server):
    alice = await new_user(server.url, "alice")
    mallory = await new_user(server.url, "mallory")
    sock = await socket(server.url, alice)
    target, log_id = uid("alice-goal"), uid("alice-log")
    await push_socket(
        sock,
        "a",
        [
            new_goal(1, target),
            {"mutation_id": 2, "entity": "preferences", "op": "put", "fields": {"theme": "dark"}},
            {"mutation_id": 3, **log(), "id": log_id},
        ],
    )
    before = await pull_all(server.url, alice)
    msock = await socket(server.url, mallory)
    tries = [
        goal(1, target, title="mine now"),
        goal(2, target, progress=100),
        {"mutation_id": 3, "entity": "goal", "op": "delete", "id": target},
        {"mutation_id": 4, **log(), "id": log_id},  # a full create over her id
        {"mutation_id": 5, **log(notes="mine"), "id": log_id},
        {"mutation_id": 6, "entity": "logbook_entry", "op": "delete", "id": log_id},
    ]
    for mutation in tries:
        answer = await push_socket(msock, "m", [mutation])
        assert answer["error"]["code"] == "not_found", answer
    # Mallory's own preferences are hers alone.
    answer = await push_socket(
        msock, "m", [{"mutation_id": 7, "entity": "preferences", "op": "put", "fields": {"x": 1}}]
    )
    assert "error" not in answer
    assert await pull_all(server.url, alice) == before
    [prefs] = await pull_all(server.url, mallory)
    assert prefs["fields"] == {"x": 1}
    await sock.disconnect()
    await msock.disconnect()


# --------------------------------------------------------------------------- live


async def test_poke_reaches_the_other_devices_not_the_pusher(server):
    token = await new_user(server.url)
    phone, laptop, tablet = await devices(server.url, token, {}, {}, {"transport": "rest"})
    stranger_token = await new_user(server.url, "stranger")
    [stranger] = await devices(server.url, stranger_token, {})
    gid = phone.create("goal", {"title": "Arpeggios"})
    assert await phone.push()
    for device in (laptop, tablet):
        for _ in range(200):
            if ("goal", gid) in device.rows:
                break
            await asyncio.sleep(0.01)
        assert ("goal", gid) in device.rows, device.name
        assert device.pokes[-1] == {"version": 1}
    await asyncio.sleep(0.1)
    assert phone.pokes == [] and stranger.pokes == []
    # A REST write has no pushing socket: every device hears of it.
    status, _ = await rest(server.url, token, "PUT", f"/api/goals/{gid}", json={"progress": 5})
    assert status == 200
    for device in (phone, laptop, tablet):
        for _ in range(200):
            if device.rows.get(("goal", gid), {}).get("version") == 2:
                break
            await asyncio.sleep(0.01)
        assert device.rows[("goal", gid)]["fields"]["progress"] == 5
    assert stranger.pokes == []
    await close(phone, laptop, tablet, stranger)


async def test_room_logs_appear_in_the_stream(server):
    token = await new_user(server.url, "player")
    [tablet] = await devices(server.url, token, {})
    player = await socket(server.url, token)
    await player.sync_clock(3)
    room = (await player.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    room_id = room["room_id"]
    await player.call("room:join", {"room_id": room_id, "role": "player", "instrument": "cello"})
    await player.call("room:start", {"room_id": room_id})
    await asyncio.sleep(0.5)
    for pitch in (60, 64, 67):
        t = player.server_now()
        await player.call("note", {"room_id": room_id, "type": "on", "pitch": pitch,
                                   "velocity": 80, "t": t})  # fmt: skip
        await player.call("note", {"room_id": room_id, "type": "off", "pitch": pitch,
                                   "velocity": 0, "t": t + 100})  # fmt: skip
    ended = await player.call("room:end", {"room_id": room_id})
    for _ in range(300):
        if any(k[0] == "logbook_entry" for k in tablet.rows):
            break
        await asyncio.sleep(0.01)
    [(key, row)] = [(k, v) for k, v in tablet.rows.items() if k[0] == "logbook_entry"]
    fields = row["fields"]
    assert fields["source"] == "room" and fields["session_id"] == ended["session_id"]
    assert fields["instrument"] == "cello" and fields["result"]["notes_played"] == 3
    assert tablet.pokes, "the finished room poked the player's devices"
    # Its measurements are read-only; annotations can be added from any device.
    tablet.put("logbook_entry", key[1], {"notes": "good intonation", "self_rating": 4})
    tablet.put("logbook_entry", key[1], {"result": {}})
    tablet.put("logbook_entry", key[1], {"duration_seconds": 1})
    assert await tablet.push()
    await tablet.pull()
    assert [e["code"] for _, e in tablet.rejected] == ["unknown_field", "read_only_field"]
    fields = (await server_state(server.url, token))[key]["fields"]
    assert fields["notes"] == "good intonation" and fields["result"]["notes_played"] == 3
    await player.disconnect()
    await close(tablet)


async def test_pokes_cross_processes_through_redis(fresh_server, redis, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    common = ("--redis-url", redis.url, "--database-url", database, "--secret-key", "k" * 32)
    one = fresh_server(*common)
    two = fresh_server(*common)
    token = await new_user(one.url)
    [phone] = await devices(one.url, token, {})
    [laptop] = await devices(two.url, token, {})
    gid = phone.create("goal", {"title": "Duets with Ada"})
    assert await phone.push()
    for _ in range(300):
        if ("goal", gid) in laptop.rows:
            break
        await asyncio.sleep(0.01)
    assert laptop.pokes and ("goal", gid) in laptop.rows
    await close(phone, laptop)


# --------------------------------------------------------------------------- REST = Socket.IO


def _strip_times(changes: list[dict]) -> list[dict]:
    out = copy.deepcopy(changes)
    for change in out:
        for name in ("created_at", "updated_at"):
            change["fields"].pop(name, None)
    return out


def same_script(g: str) -> list[list[dict]]:
    return [
        [new_goal(1, g), goal(2, g, progress=20)],
        [goal(2, g, progress=99), goal(3, g, status="completed")],  # 2 is a duplicate
        [goal(5, g, progress=1)],  # a gap
        [goal(4, g, progress=101), goal(5, g, progress=1)],  # refused, then stops
        [goal(5, g, progress=1), {"mutation_id": 6, "entity": "goal", "op": "delete", "id": g}],
        [goal(7, g, title="after delete")],
        [{"mutation_id": 8, "entity": "preferences", "op": "put", "fields": {"metronome": 60}}],
        [{"mutation_id": 9, "entity": "goal", "op": "delete", "id": uid("never")}],
    ]


async def test_rest_and_socketio_give_the_same_answers(server):
    rest_token = await new_user(server.url)
    sock_token = await new_user(server.url)
    sock = await socket(server.url, sock_token)
    g_rest, g_sock = uid("g"), uid("g")

    def same(a: Any, b: Any) -> bool:
        # Equal but for the row ids (global keys, so each user has its own).
        return json.dumps(a).replace(g_rest, "G") == json.dumps(b).replace(g_sock, "G")

    for rest_push, sock_push in zip(same_script(g_rest), same_script(g_sock), strict=True):
        status, via_rest = await rest(
            server.url, rest_token, "POST", "/api/sync/push",
            json={"client_id": "same", "mutations": rest_push},
        )  # fmt: skip
        via_socket = await sock.sio.call("sync:push", {"client_id": "same", "mutations": sock_push})
        assert status == 200
        if "never" in json.dumps(rest_push):
            assert via_rest["error"]["code"] == via_socket["error"]["code"] == "not_found"
            continue
        assert same(via_rest, via_socket), (via_rest, via_socket)
    for cursor, limit in ((0, 500), (2, 1), (100, 5)):
        _, via_rest = await rest(
            server.url, rest_token, "GET", f"/api/sync/pull?cursor={cursor}&limit={limit}"
        )
        via_socket = await sock.sio.call("sync:pull", {"cursor": cursor, "limit": limit})
        assert same(_strip_times(via_rest["changes"]), _strip_times(via_socket["changes"]))
        assert {k: v for k, v in via_rest.items() if k != "changes"} == {
            k: v for k, v in via_socket.items() if k != "changes"
        }
    await sock.disconnect()


# --------------------------------------------------------------------------- concurrency


async def test_racing_pushes_never_show_a_reader_a_gap(server):
    token = await new_user(server.url)
    socks = [await socket(server.url, token) for _ in range(3)]
    batches = {
        f"client{c}": [[new_goal(b * 5 + i + 1, uid(f"c{c}")) for i in range(5)] for b in range(8)]
        for c in range(3)
    }
    stop = asyncio.Event()
    seen: list[int] = []

    async def reader() -> None:
        cursor = 0
        while not stop.is_set() or cursor < 120:
            status, body = await rest(server.url, token, "GET", f"/api/sync/pull?cursor={cursor}")
            versions = [c["version"] for c in body["changes"]]
            # Every version after the cursor, with nothing skipped.
            assert versions == list(range(cursor + 1, cursor + 1 + len(versions))), versions
            seen.extend(versions)
            cursor = body["cursor"]

    async def writer(sock: TuttiClient, client_id: str) -> None:
        for batch in batches[client_id]:
            # Each push twice at once: a duplicate racing its original.
            answers = await asyncio.gather(
                push_socket(sock, client_id, batch), push_socket(sock, client_id, batch)
            )
            assert all("error" not in a for a in answers), answers

    read = asyncio.create_task(reader())
    await asyncio.gather(*(writer(s, f"client{i}") for i, s in enumerate(socks)))
    stop.set()
    await asyncio.wait_for(read, 30)
    assert seen == list(range(1, 121))
    changes = await pull_all(server.url, token)
    assert len(changes) == 120 and len({c["id"] for c in changes}) == 120
    for sock in socks:
        await sock.disconnect()


# --------------------------------------------------------------------------- the property


class Model:
    """What the server must hold: each client's mutations applied exactly once, in
    mutation-id order, interleaved in the order the pushes reached the server."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.rows: dict[tuple[str, str], dict] = {}
        self.writes = 0  # versions the server must have taken

    def deliver(self, body: dict) -> None:
        client = body["client_id"]
        for m in sorted(body["mutations"], key=lambda m: m["mutation_id"]):
            last = self.last.get(client, 0)
            if m["mutation_id"] <= last:
                continue
            assert m["mutation_id"] == last + 1, "the device never leaves a gap"
            self.apply(m)
            self.last[client] = m["mutation_id"]

    def apply(self, m: dict) -> None:
        key = (m["entity"], m.get("id") or "me")
        row = self.rows.get(key)
        if m["entity"] == "preferences":
            current = row["fields"] if row else {}
            merged = {**current, **m["fields"]}
            merged = {k: v for k, v in merged.items() if v is not None}
            if row is None or merged != current:
                self.rows[key] = {"deleted": False, "fields": merged}
                self.writes += 1
            return
        if m["op"] == "delete":
            assert row is not None
            if not row["deleted"]:
                self.rows[key] = {"deleted": True, "fields": row["fields"]}
                self.writes += 1
            return
        if row is None:
            fields = {**MODEL_DEFAULTS[m["entity"]], **m["fields"]}
            self.rows[key] = {"deleted": False, "fields": fields}
            self.writes += 1
        elif not row["deleted"]:
            merged = {**row["fields"], **m["fields"]}
            if merged != row["fields"]:
                row["fields"] = merged
                self.writes += 1


class FaultyNetwork:
    """A device's transport with faults: the next push is dropped, its ack lost,
    duplicated, or held back and delivered later (reordered)."""

    def __init__(self, inner, model: Model) -> None:
        self.inner = inner
        self.model = model
        self.fault = "ok"
        self.held: list[dict] = []

    async def _deliver(self, body: dict) -> dict:
        answer = await self.inner.push(body)
        self.model.deliver(body)  # pushes are awaited one at a time: this is server order
        return answer

    async def push(self, body: dict) -> dict:
        fault, self.fault = self.fault, "ok"  # a retry goes through
        if fault != "ok":
            event(f"fault {fault}")
        if fault == "drop_request":
            raise TransportError("request lost")
        if fault == "hold":
            self.held.append(copy.deepcopy(body))
            raise TransportError("request delayed")
        answer = await self._deliver(body)
        if fault == "duplicate":
            answer = await self._deliver(copy.deepcopy(body))
        if fault == "drop_ack":
            raise TransportError("ack lost")
        return answer

    async def deliver_held(self) -> None:
        held, self.held = self.held, []
        for i, body in enumerate(held):
            try:
                await self._deliver(body)
            except TransportError:  # this device's link is down: still in flight
                self.held = held[i:] + self.held
                return
            event("late delivery of a held push")

    async def pull(self, cursor: int, limit: int) -> dict:
        return await self.inner.pull(cursor, limit)


TITLES = st.text("abcdefgh ", min_size=1, max_size=12).filter(str.strip)
ENTITY_FIELDS = {
    "goal": st.fixed_dictionaries(
        {},
        optional={
            "title": TITLES,
            "progress": st.integers(0, 100),
            "status": st.sampled_from(["active", "completed", "abandoned"]),
            "notes": st.none() | TITLES,
        },
    ),
    "repertoire_item": st.fixed_dictionaries(
        {},
        optional={
            "work_title": TITLES,
            "status": st.sampled_from(["planned", "learning", "working", "polished"]),
            "composer": st.none() | TITLES,
        },
    ),
    "logbook_entry": st.fixed_dictionaries(
        {},
        optional={
            "self_rating": st.none() | st.integers(1, 5),
            "mood": st.none() | st.sampled_from(["calm", "tired", "focused"]),
            "duration_seconds": st.integers(0, 7200),
            "notes": st.none() | TITLES,
        },
    ),
}
MODEL_DEFAULTS = {  # what the server fills in on create, for the fields the test edits
    "goal": {"status": "active", "progress": 0, "notes": None},
    "repertoire_item": {"status": "planned", "composer": None},
    "logbook_entry": {"self_rating": None, "mood": None, "notes": None},
}
REQUIRED = {
    "goal": lambda d: {"title": "goal"},
    "repertoire_item": lambda d: {"work_title": "piece"},
    "logbook_entry": lambda d: {
        "activity_type": "technique",
        "start_time": d.now().replace(microsecond=0).isoformat(),
        "duration_seconds": 600,
    },
}
DEVICE = st.integers(0, 2)
ANY_FIELDS = st.fixed_dictionaries(ENTITY_FIELDS)  # one patch per entity; the step picks
CREATE = st.sampled_from(list(ENTITY_FIELDS)).flatmap(
    lambda e: st.tuples(st.just("create"), DEVICE, st.just(e), ENTITY_FIELDS[e])
)
UPDATE = st.tuples(st.just("update"), DEVICE, st.integers(0, 50), ANY_FIELDS)
PUSH = st.tuples(
    st.just("push"),
    DEVICE,
    st.sampled_from(["ok", "drop_request", "drop_ack", "duplicate", "hold"]),
)
PREFS = st.tuples(
    st.just("prefs"),
    DEVICE,
    st.dictionaries(
        st.sampled_from(["theme", "metronome", "a4_hz"]), st.none() | st.integers(0, 3), min_size=1
    ),
)
STEP = st.one_of(  # weighted by repetition
    CREATE,
    CREATE,
    UPDATE,
    UPDATE,
    UPDATE,
    st.tuples(st.just("delete"), DEVICE, st.integers(0, 50)),
    PREFS,
    PUSH,
    PUSH,
    PUSH,
    PUSH,
    st.tuples(st.just("offline"), DEVICE),
    st.tuples(st.just("online"), DEVICE),
    st.tuples(st.just("online"), DEVICE),
    st.tuples(st.just("deliver_held"), DEVICE),
    st.tuples(st.just("pull"), DEVICE),
)


async def run_three_devices(url: str, steps: list, final_held_first: bool) -> None:
    token = await new_user(url, "three devices")
    model = Model()
    devs = [
        SyncDevice(url, token, name="phone"),
        SyncDevice(url, token, name="laptop", clock_offset_s=5 * 3600),  # hours ahead
        SyncDevice(url, token, name="tablet", transport="rest", clock_offset_s=-3 * 3600),
    ]
    nets = []
    for device in devs:
        net = FaultyNetwork(device.transport, model)
        device.transport = net
        nets.append(net)
        await device.connect()
    try:
        for step in steps:
            kind, i = step[0], step[1]
            device, net = devs[i], nets[i]
            editable = sorted(k for k in device.view() if k[0] != "preferences")
            if kind == "create":
                entity = step[2]
                device.create(entity, {**REQUIRED[entity](device), **step[3]})
            elif kind == "update" and editable:
                entity, row_id = editable[step[2] % len(editable)]
                device.put(entity, row_id, step[3][entity])
            elif kind == "delete" and editable:
                entity, row_id = editable[step[2] % len(editable)]
                device.delete(entity, row_id)
            elif kind == "prefs":
                device.put("preferences", "me", step[2])
            elif kind == "offline":
                await device.disconnect()
            elif kind == "online":
                await device.connect()
            elif kind == "push":
                net.fault = step[2]
                await device.push(attempts=2, backoff_s=0)
            elif kind == "deliver_held":
                await net.deliver_held()
            elif kind == "pull":
                with contextlib.suppress(TransportError):
                    await device.pull()
        # Everyone comes back online; late copies of held pushes arrive too.
        for device in devs:
            await device.connect()
        if final_held_first:
            for net in nets:
                await net.deliver_held()
        for device in devs:
            assert await device.push()
        for net in nets:
            await net.deliver_held()
        for device in devs:
            await device.idle()
            await device.pull()
        state = await server_state(url, token)
        # Nothing lost, nothing duplicated: the server holds exactly the model ...
        assert {k: v["deleted"] for k, v in state.items()} == {
            k: v["deleted"] for k, v in model.rows.items()
        }
        for key, row in model.rows.items():
            if row["deleted"]:
                assert state[key]["fields"] == {}
                continue
            held = state[key]["fields"]
            assert {name: held[name] for name in row["fields"]} == row["fields"], key
        event(
            f"server writes: {'0' if not model.writes else '1-20' if model.writes <= 20 else '>20'}"
        )
        event(f"tombstones: {'yes' if any(r['deleted'] for r in model.rows.values()) else 'no'}")
        # ... each applied change took exactly one version ...
        assert max((v["version"] for v in state.values()), default=0) == model.writes
        # ... and all three devices hold exactly the server's state, deletes included.
        for device in devs:
            assert device.outbox == [] and device.acked == []
            assert device.state() == state, device.name
            assert device.view() == live(state), device.name
    finally:
        for device in devs:
            await device.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(STEP, min_size=20, max_size=80), final_held_first=st.booleans())
def test_three_devices_converge_to_the_servers_state(server, steps, final_held_first):
    asyncio.run(run_three_devices(server.url, steps, final_held_first))


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg_server(postgres, tmp_path_factory):
    """A ``tutti serve`` on PostgreSQL, where writers really run concurrently."""
    url = postgres.create_database(f"sync_{uuid.uuid4().hex[:12]}")
    proc = start_server(tmp_path_factory.mktemp("pg-data"), *FAST, "--database-url", url)
    yield proc
    proc.stop()


async def test_racing_pushes_never_show_a_reader_a_gap_on_postgresql(pg_server):
    await test_racing_pushes_never_show_a_reader_a_gap(pg_server)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=20, max_size=60), final_held_first=st.booleans())
def test_three_devices_converge_on_postgresql(pg_server, steps, final_held_first):
    asyncio.run(run_three_devices(pg_server.url, steps, final_held_first))
