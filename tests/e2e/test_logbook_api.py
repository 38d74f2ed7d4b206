"""The logbook REST API against a real server: CRUD, filters, timers, quick logs,
preferences, the profile, validation — every write a sync write — and scoping:
user A can neither read nor change nor delete anything of user B's.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import aiohttp
import pytest

from server.clients.room_client import TuttiClient
from server.clients.sync_client import SyncDevice, server_state

# --------------------------------------------------------------------------- helpers


class User:
    """A guest with a REST helper."""

    def __init__(self, url: str, token: str, user: dict) -> None:
        self.url = url
        self.token = token
        self.id = user["id"]

    @classmethod
    async def guest(cls, url: str, name: str = "musician") -> User:
        client = TuttiClient(url)
        user = await client.login_guest(name)
        return cls(url, client.token, user)

    async def call(self, method: str, path: str, body: Any = None, **kwargs) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            kwargs["json"] = body
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, headers=headers, **kwargs) as resp,
        ):
            data = await resp.json(content_type=None) if resp.status != 204 else None
            return resp.status, data

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200, **kw) -> Any:
        got, data = await self.call(method, path, body, **kw)
        assert got == status, (method, path, got, data)
        return data


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def log_body(**fields: Any) -> dict:
    return {
        "activity_type": "technique",
        "start_time": "2025-03-01T09:00:00+00:00",
        "duration_seconds": 1200,
        **fields,
    }


@pytest.fixture
async def alice(server) -> User:
    return await User.guest(server.url, "alice")


@pytest.fixture
async def bob(server) -> User:
    return await User.guest(server.url, "bob")


async def upload_bundled_piece(user: User) -> str:
    midi = resources.files("server.music").joinpath("bwv66.6.mid").read_bytes()
    data = await user.ok("POST", "/api/pieces?title=Chorale", status=201, data=midi)
    return data["id"]


# --------------------------------------------------------------------------- logs


async def test_logs_create_get_update_delete(alice):
    created = await alice.ok(
        "POST",
        "/api/practice/logs",
        log_body(instrument="violin", work_title="Partita 2", self_rating=3,
                 focus_areas=["intonation"], mood="focused",
                 pieces=[{"piece_id": None, "work_title": "Partita 2"}]),
        status=201,
    )  # fmt: skip
    log_id = created["id"]
    assert created["source"] == "manual" and created["version"] >= 1
    assert created["start_time"] == "2025-03-01T09:00:00+00:00"
    assert created["pieces"] == [{"piece_id": None, "work_title": "Partita 2"}]
    assert await alice.ok("GET", f"/api/practice/logs/{log_id}") == created
    updated = await alice.ok("PUT", f"/api/practice/logs/{log_id}", {"self_rating": 5})
    assert updated["self_rating"] == 5 and updated["instrument"] == "violin"
    assert updated["version"] > created["version"]
    patched = await alice.ok("PATCH", f"/api/practice/logs/{log_id}", {"notes": None})
    assert patched["notes"] is None and patched["self_rating"] == 5
    same = await alice.ok("PUT", f"/api/practice/logs/{log_id}", {"self_rating": 5})
    assert same["version"] == patched["version"]  # nothing changed: no new version
    status, body = await alice.call(
        "PUT", f"/api/practice/logs/{log_id}", {"end_time": "2025-03-01T08:00:00Z", "notes": "x"}
    )
    assert status == 400 and body["error"]["code"] == "invalid_value"  # ends before it starts
    assert await alice.ok("GET", f"/api/practice/logs/{log_id}") == same  # untouched
    ended = await alice.ok(
        "PUT", f"/api/practice/logs/{log_id}", {"end_time": "2025-03-01T09:20:00+00:00"}
    )
    assert ended["end_time"] == "2025-03-01T09:20:00+00:00"
    assert await alice.call("DELETE", f"/api/practice/logs/{log_id}") == (204, None)
    status, body = await alice.call("GET", f"/api/practice/logs/{log_id}")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert ended["version"] > same["version"]
    assert (await alice.call("DELETE", f"/api/practice/logs/{log_id}"))[0] == 404
    assert (await alice.call("PUT", f"/api/practice/logs/{log_id}", {"notes": "x"}))[0] == 404
    # The delete is a tombstone in the sync stream.
    state = await server_state(alice.url, alice.token)
    assert state[("logbook_entry", log_id)] == {
        "version": state[("logbook_entry", log_id)]["version"],
        "deleted": True,
        "fields": {},
    }


async def test_a_client_made_id_makes_a_create_safe_to_retry(alice):
    log_id = uuid.uuid4().hex
    first = await alice.ok("POST", "/api/practice/logs", {**log_body(), "id": log_id}, status=201)
    assert first["id"] == log_id
    status, body = await alice.call("POST", "/api/practice/logs", {**log_body(), "id": log_id})
    assert status == 409 and body["error"]["code"] == "already_exists"
    listed = await alice.ok("GET", "/api/practice/logs")
    assert [entry["id"] for entry in listed["logs"]] == [log_id]


async def test_logs_list_filters_and_pages(alice):
    piece_id = await upload_bundled_piece(alice)
    day = datetime(2025, 4, 1, 18, tzinfo=UTC)
    made = []
    for i in range(12):
        body = log_body(
            start_time=iso(day + timedelta(days=i)),
            activity_type="scales" if i % 3 == 0 else "repertoire",
            work_title="Chorale BWV 66.6" if i % 4 == 0 else "Clair de lune",
            piece_id=piece_id if i % 4 == 0 else None,
        )
        made.append(await alice.ok("POST", "/api/practice/logs", body, status=201))
    everything = await alice.ok("GET", "/api/practice/logs?limit=200")
    assert everything["total"] == 12
    starts = [e["start_time"] for e in everything["logs"]]
    assert starts == sorted(starts, reverse=True)  # newest first

    async def ids(query: str) -> set[str]:
        return {e["id"] for e in (await alice.ok("GET", f"/api/practice/logs?{query}"))["logs"]}

    assert await ids("activity_type=scales") == {m["id"] for m in made[::3]}
    assert await ids(f"piece_id={piece_id}") == {m["id"] for m in made[::4]}
    assert await ids("work_title=clair") == {m["id"] for i, m in enumerate(made) if i % 4}
    assert await ids("work_title=%25") == set()  # a literal %, not a wildcard
    assert await ids("from=2025-04-03&to=2025-04-05") == {m["id"] for m in made[2:5]}
    assert await ids("from=2025-04-03T18:00:00Z&to=2025-04-04T18:00:00%2B00:00") == {
        m["id"] for m in made[2:4]
    }
    assert await ids("activity_type=scales&from=2025-04-05") == {m["id"] for m in made[6::3]}
    page1 = await alice.ok("GET", "/api/practice/logs?limit=5&offset=0")
    page3 = await alice.ok("GET", "/api/practice/logs?limit=5&offset=10")
    assert len(page1["logs"]) == 5 and len(page3["logs"]) == 2 and page3["total"] == 12
    assert page1["logs"][0]["id"] == made[-1]["id"] and page3["logs"][-1]["id"] == made[0]["id"]
    for query, code in (
        ("limit=0", "out_of_range"),
        ("limit=201", "out_of_range"),
        ("limit=x", "wrong_type"),
        ("offset=-1", "out_of_range"),
        ("from=yesterday", "invalid_value"),
        ("to=2025-04-05T10:00:00", "invalid_value"),
        ("activity_type=napping", "invalid_value"),
        ("source=AAA", "invalid_value"),  # found by schemathesis (tests/e2e/test_openapi.py)
        # Dates at the ends of the calendar once overflowed into a 500.
        ("to=9999-12-31", "invalid_value"),
        ("from=0001-01-01T00:00:00%2B14:00", "invalid_value"),
        ("to=9999-12-31T23:59:59-14:00", "invalid_value"),
    ):
        status, body = await alice.call("GET", f"/api/practice/logs?{query}")
        assert status == 400 and body["error"]["code"] == code, (query, body)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"activity_type": "technique", "duration_seconds": 10}, "missing_field"),
        (log_body(duration_seconds="long"), "wrong_type"),
        (log_body(duration_seconds=-1), "out_of_range"),
        (log_body(self_rating=0), "out_of_range"),
        (log_body(activity_type="napping"), "invalid_value"),
        (log_body(start_time="2025-03-01 09:00"), "invalid_value"),
        (log_body(mood="x" * 33), "invalid_value"),
        (log_body(tempo_practiced=1000), "out_of_range"),
        (log_body(piece_id="no-such-piece"), "unknown_piece"),
        (log_body(user_id="someone-else"), "unknown_field"),
        (log_body(version=99), "unknown_field"),
        (log_body(source="room"), "invalid_value"),
        ({**log_body(), "id": 5}, "wrong_type"),
        ({**log_body(), "id": ""}, "invalid_value"),
        ([log_body()], "wrong_type"),
    ],
)
async def test_log_bodies_are_validated(alice, body, code):
    status, answer = await alice.call("POST", "/api/practice/logs", body)
    assert status == 400 and answer["error"]["code"] == code, answer
    assert (await alice.ok("GET", "/api/practice/logs"))["total"] == 0


async def test_bad_json_and_missing_tokens_are_refused(server, alice):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/api/practice/logs",
            data=b"{nope",
            headers={"Authorization": f"Bearer {alice.token}"},
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
        for method, path in ROUTES_NEEDING_A_TOKEN:
            async with http.request(method, server.url + path, json={}) as resp:
                body = await resp.json()
                assert resp.status == 401 and body["error"]["code"] == "missing_token", path


ROUTES_NEEDING_A_TOKEN = [
    ("GET", "/api/users/me"),
    ("PUT", "/api/users/me"),
    ("DELETE", "/api/users/me"),
    ("GET", "/api/users/me/preferences"),
    ("PUT", "/api/users/me/preferences"),
    ("DELETE", "/api/users/me/preferences"),
    ("POST", "/api/practice/sessions/start"),
    ("POST", "/api/practice/sessions/x/end"),
    ("GET", "/api/practice/sessions"),
    ("GET", "/api/practice/sessions/x"),
    ("POST", "/api/practice/logs"),
    ("GET", "/api/practice/logs"),
    ("GET", "/api/practice/logs/x"),
    ("PUT", "/api/practice/logs/x"),
    ("DELETE", "/api/practice/logs/x"),
    ("POST", "/api/practice/quick-log"),
    ("POST", "/api/practice/templates"),
    ("GET", "/api/practice/templates"),
    ("GET", "/api/goals"),
    ("POST", "/api/repertoire"),
]


# --------------------------------------------------------------------------- quick log, timers


async def test_quick_log_is_stamped_by_the_server_clock(alice):
    before = datetime.now(UTC)
    entry = await alice.ok(
        "POST",
        "/api/practice/quick-log",
        {"activity_type": "sight_reading", "duration_seconds": 900, "mood": "tired"},
        status=201,
    )
    after = datetime.now(UTC)
    start = datetime.fromisoformat(entry["start_time"])
    end = datetime.fromisoformat(entry["end_time"])
    assert entry["source"] == "quick_log" and entry["mood"] == "tired"
    assert before - timedelta(seconds=901) <= start <= after - timedelta(seconds=899)
    assert end - start == timedelta(seconds=900)
    given = await alice.ok(
        "POST",
        "/api/practice/quick-log",
        {"activity_type": "scales", "duration_seconds": 60, "start_time": "2025-01-01T08:00:00Z"},
        status=201,
    )
    assert given["start_time"] == "2025-01-01T08:00:00+00:00"
    assert given["end_time"] == "2025-01-01T08:01:00+00:00"
    for body, code in (
        ({"activity_type": "scales"}, "missing_field"),
        ({"activity_type": "scales", "duration_seconds": 60, "source": "manual"}, "unknown_field"),
        ({"activity_type": "scales", "duration_seconds": 60, "self_rating": 9}, "out_of_range"),
    ):
        status, answer = await alice.call("POST", "/api/practice/quick-log", body)
        assert status == 400 and answer["error"]["code"] == code


async def test_practice_session_start_end_list_get(alice, bob):
    started = await alice.ok(
        "POST",
        "/api/practice/sessions/start",
        {"activity_type": "repertoire", "work_title": "Gymnopédie 1", "instrument": "piano"},
        status=201,
    )
    sid = started["id"]
    assert started["source"] == "timer" and started["end_time"] is None
    assert started["duration_seconds"] == 0
    await asyncio.sleep(0.3)
    ended = await alice.ok(
        "POST", f"/api/practice/sessions/{sid}/end", {"self_rating": 4, "notes": "slow hands"}
    )
    assert ended["end_time"] is not None and ended["self_rating"] == 4
    assert 0.25 <= ended["duration_seconds"] < 10
    status, body = await alice.call("POST", f"/api/practice/sessions/{sid}/end")
    assert status == 409 and body["error"]["code"] == "already_ended"
    manual = await alice.ok("POST", "/api/practice/logs", log_body(), status=201)
    listed = await alice.ok("GET", "/api/practice/sessions")
    assert [s["id"] for s in listed["sessions"]] == [sid]  # timers and room logs only
    assert await alice.ok("GET", f"/api/practice/sessions/{sid}") == ended
    assert (await alice.call("GET", f"/api/practice/sessions/{manual['id']}"))[0] == 404
    assert (await alice.call("POST", f"/api/practice/sessions/{manual['id']}/end"))[0] == 404
    for body, code in (
        ({}, "missing_field"),
        ({"activity_type": "repertoire", "start_time": "2025-01-01T00:00:00Z"}, "unknown_field"),
        ({"activity_type": "repertoire", "duration_seconds": 5}, "unknown_field"),
        ({"activity_type": "juggling"}, "invalid_value"),
    ):
        status, answer = await alice.call("POST", "/api/practice/sessions/start", body)
        assert status == 400 and answer["error"]["code"] == code, (body, answer)
    other = await alice.ok(
        "POST", "/api/practice/sessions/start", {"activity_type": "scales"}, status=201
    )
    status, answer = await alice.call(
        "POST", f"/api/practice/sessions/{other['id']}/end", {"duration_seconds": 99999}
    )
    assert status == 400 and answer["error"]["code"] == "unknown_field"
    # Bob cannot end Alice's running timer.
    status, answer = await bob.call("POST", f"/api/practice/sessions/{other['id']}/end")
    assert status == 404 and answer["error"]["code"] == "not_found"
    assert (await alice.ok("GET", f"/api/practice/sessions/{other['id']}"))["end_time"] is None


# --------------------------------------------------------------------------- other entities

ENTITY_ROUTES = [
    (
        "/api/practice/templates",
        "templates",
        {"name": "Morning", "activity_type": "warm_up", "duration_seconds": 600},
        {"focus_areas": ["tone", "rhythm"]},
        ({"name": ""}, "invalid_value"),
    ),
    (
        "/api/goals",
        "goals",
        {"title": "Play the Bach suite", "target_date": "2026-06-01"},
        {"progress": 35, "status": "active"},
        ({"progress": 101}, "out_of_range"),
    ),
    (
        "/api/repertoire",
        "repertoire",
        {"work_title": "Cello suite 1", "composer": "J. S. Bach"},
        {"status": "performance_ready"},
        ({"status": "finished"}, "invalid_value"),
    ),
]


@pytest.mark.parametrize(("path", "key", "create", "patch", "bad"), ENTITY_ROUTES)
async def test_entity_crud(alice, path, key, create, patch, bad):
    made = await alice.ok("POST", path, create, status=201)
    assert {k: made[k] for k in create} == create
    assert (await alice.ok("GET", path))[key] == [made]
    changed = await alice.ok("PUT", f"{path}/{made['id']}", patch)
    assert {k: changed[k] for k in patch} == patch and changed["version"] > made["version"]
    assert await alice.ok("GET", f"{path}/{made['id']}") == changed
    status, body = await alice.call("PATCH", f"{path}/{made['id']}", bad[0])
    assert status == 400 and body["error"]["code"] == bad[1]
    assert await alice.ok("GET", f"{path}/{made['id']}") == changed
    assert (await alice.call("DELETE", f"{path}/{made['id']}"))[0] == 204
    assert (await alice.ok("GET", path))[key] == []
    assert (await alice.call("GET", f"{path}/{made['id']}"))[0] == 404


async def test_preferences_merge_key_by_key(alice):
    assert await alice.ok("GET", "/api/users/me/preferences") == {"preferences": {}, "version": 0}
    one = await alice.ok("PUT", "/api/users/me/preferences", {"theme": "dark", "a4_hz": 442})
    assert one["preferences"] == {"theme": "dark", "a4_hz": 442}
    two = await alice.ok("PATCH", "/api/users/me/preferences", {"a4_hz": None, "metronome": 72})
    assert two["preferences"] == {"theme": "dark", "metronome": 72}
    assert two["version"] > one["version"]
    assert await alice.ok("GET", "/api/users/me/preferences") == two
    status, body = await alice.call("PUT", "/api/users/me/preferences", ["dark"])
    assert status == 400 and body["error"]["code"] == "wrong_type"
    status, body = await alice.call("PUT", "/api/users/me/preferences", {"k" * 65: 1})
    assert status == 400 and body["error"]["code"] == "invalid_value"
    assert (await alice.call("DELETE", "/api/users/me/preferences"))[0] == 204
    assert (await alice.ok("GET", "/api/users/me/preferences"))["preferences"] == {}


async def test_profile_get_put_and_delete(server, alice, bob):
    me = await alice.ok("GET", "/api/users/me")
    assert me["id"] == alice.id and me["display_name"] == "alice" and me["is_guest"] is True
    renamed = await alice.ok("PUT", "/api/users/me", {"display_name": "  Alice L.  "})
    assert renamed["display_name"] == "Alice L."
    for body, code in (
        ({"display_name": ""}, "invalid_value"),
        ({"display_name": "A", "name": "x"}, "unknown_field"),
        ({}, "missing_field"),
    ):
        status, answer = await alice.call("PUT", "/api/users/me", body)
        assert status == 400 and answer["error"]["code"] == code
    # Alice's logbook and a connected device; Bob's logbook must survive her deletion.
    tablet = SyncDevice(server.url, alice.token)
    await tablet.connect()
    await alice.ok("POST", "/api/practice/logs", log_body(), status=201)
    await alice.ok("POST", "/api/goals", {"title": "Etudes"}, status=201)
    await alice.ok("PUT", "/api/users/me/preferences", {"theme": "dark"})
    bobs = await bob.ok("POST", "/api/goals", {"title": "Bob's goal"}, status=201)
    await tablet.pull()
    assert len(tablet.view()) == 3
    assert (await alice.call("DELETE", "/api/users/me"))[0] == 204
    # Deactivated at once (server/services/privacy.py): her device is let go, her tokens refused.
    for _ in range(200):
        if not tablet.sio.connected:
            break
        await asyncio.sleep(0.01)
    assert not tablet.sio.connected
    for path in ("/api/users/me", "/api/practice/logs"):
        status, answer = await alice.call("GET", path)
        assert (status, answer["error"]["code"]) == (401, "account_deleted")
    assert await bob.ok("GET", f"/api/goals/{bobs['id']}") == bobs
    await tablet.close()


async def test_rest_writes_are_sync_writes(server, alice):
    phone = SyncDevice(server.url, alice.token)
    await phone.connect()
    gid = phone.create("goal", {"title": "Vibrato"})
    assert await phone.push()
    made = await alice.ok("POST", "/api/repertoire", {"work_title": "Méditation"}, status=201)
    changed = await alice.ok("PUT", f"/api/goals/{gid}", {"progress": 60})
    assert (made["version"], changed["version"]) == (2, 3)  # one sequence for both paths
    for _ in range(300):
        if phone.cursor >= 3 and len(phone.pokes) >= 2:  # the pull may beat the second poke
            break
        await asyncio.sleep(0.01)
    assert phone.view()[("goal", gid)]["progress"] == 60  # poked, pulled
    assert phone.view()[("repertoire_item", made["id"])]["work_title"] == "Méditation"
    assert [p["version"] for p in phone.pokes] == [2, 3]
    await phone.close()


# --------------------------------------------------------------------------- scoping


SCOPED = [
    ("/api/practice/logs", "logs", log_body(), {"notes": "mine now"}),
    (
        "/api/practice/templates",
        "templates",
        {"name": "B's plan", "activity_type": "scales"},
        {"name": "mine now"},
    ),
    ("/api/goals", "goals", {"title": "B's goal"}, {"title": "mine now"}),
    ("/api/repertoire", "repertoire", {"work_title": "B's piece"}, {"status": "archived"}),
]


@pytest.mark.parametrize(("path", "key", "create", "patch"), SCOPED)
async def test_a_user_cannot_read_change_or_delete_anothers_rows(
    alice, bob, path, key, create, patch
):
    theirs = await bob.ok("POST", path, create, status=201)
    mine = await alice.ok("POST", path, create, status=201)
    row = f"{path}/{theirs['id']}"
    for method, body in (("GET", None), ("PUT", patch), ("PATCH", patch), ("DELETE", None)):
        status, answer = await alice.call(method, row, body)
        assert status == 404 and answer["error"]["code"] == "not_found", (method, answer)
        # Exactly what a made-up id answers: nothing tells the two apart.
        status, made_up = await alice.call(method, f"{path}/{uuid.uuid4().hex}", body)
        assert status == 404 and made_up["error"]["code"] == "not_found"
    # A create that reuses Bob's id does not touch (or take over) his row.
    status, answer = await alice.call("POST", path, {**create, "id": theirs["id"]})
    assert status == 404 and answer["error"]["code"] == "not_found"
    listed = await alice.ok("GET", f"{path}?limit=200")
    assert [r["id"] for r in listed[key]] == [mine["id"]] and listed["total"] == 1
    assert await bob.ok("GET", row) == theirs  # unchanged, same version
    state = await server_state(alice.url, alice.token)
    assert all(row_id != theirs["id"] for _, row_id in state)
    assert await bob.ok("GET", f"{path}?limit=200") == {
        key: [theirs],
        "total": 1,
        "limit": 200,
        "offset": 0,
    }


async def test_sessions_and_filters_are_scoped_too(alice, bob):
    theirs = await bob.ok(
        "POST", "/api/practice/sessions/start", {"activity_type": "scales"}, status=201
    )
    assert (await alice.call("GET", f"/api/practice/sessions/{theirs['id']}"))[0] == 404
    assert (await alice.call("POST", f"/api/practice/sessions/{theirs['id']}/end"))[0] == 404
    assert (await alice.ok("GET", "/api/practice/sessions"))["sessions"] == []
    assert (await alice.ok("GET", "/api/practice/logs?activity_type=scales"))["logs"] == []
    assert (await bob.ok("GET", f"/api/practice/sessions/{theirs['id']}")) == theirs
    await bob.ok("PUT", "/api/users/me/preferences", {"theme": "light"})
    assert (await alice.ok("GET", "/api/users/me/preferences"))["preferences"] == {}
