"""Privacy through real servers: the data export, deletion (deactivate at once), the purge.

After the purge nothing of the user may remain: every table is read through
SQLAlchemy's reflected metadata and every Redis key (name and value) is
scanned for the user's id, e-mail address and display name.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import aiohttp
import mido
import pytest
import redis as redis_sync
from sqlalchemy import MetaData, create_engine, select

from rooms.piece import load_midi
from server.clients.bot import Style, play_part
from server.clients.room_client import TuttiClient, TuttiError
from tests.e2e.test_accounts import call, log_in
from tests.music import chorale_midi
from tests.play import connected, upload_piece

TEMPO = 240.0


async def account(server, address: str) -> tuple[TuttiClient, dict]:
    """A connected client logged in with an e-mail link; and the verify answer."""
    tokens = await log_in(server, address)
    client = TuttiClient(server.url)
    client.token = tokens["access_token"]
    client.user = tokens["user"]
    await client.connect(device_name="laptop")
    await client.sync_clock(5)
    return client, tokens


async def play_duet(ada: TuttiClient, bo: TuttiClient, piece_id: str, midi: bytes) -> dict:
    """Ada (Soprano, host) and Bo (Bass) play the chorale; the ``room:finished`` payload."""
    piece = load_midi(midi)
    room = (
        await ada.call(
            "room:create",
            {"piece_id": piece_id, "mode": "duet", "tempo_bpm": TEMPO, "count_in_beats": 0},
        )
    )["room"]
    rid = room["room_id"]
    await ada.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    await bo.call("room:join", {"room_id": rid, "role": "player", "part": "Bass"})
    started = await ada.call("room:start", {"room_id": rid})
    scale = piece.bpm / TEMPO
    await asyncio.gather(
        *(
            play_part(
                c,
                rid,
                piece.part(p),
                start_at=started["start_at"],
                time_scale=scale,
                style=Style(jitter_ms=5, seed=i),
            )
            for i, (c, p) in enumerate(((ada, "Soprano"), (bo, "Bass")))
        )
    )
    return await ada.wait_for("room:finished", lambda f: f["room_id"] == rid, timeout=60)


async def solo_jam(client: TuttiClient) -> str:
    """A free jam of one player ended by the host; its session id."""
    room = (await client.call("room:create", {"mode": "free", "count_in_beats": 0}))["room"]
    rid = room["room_id"]
    await client.call("room:join", {"room_id": rid, "role": "player"})
    await client.call("room:start", {"room_id": rid})
    now = client.server_now()
    events = [
        {"type": kind, "pitch": 60 + i, "velocity": 80 if kind == "on" else 0, "t": now + i * 50}
        for i in range(4)
        for kind in ("on", "off")
    ]
    await client.call("notes", {"room_id": rid, "events": events})
    return (await client.call("room:end", {"room_id": rid}))["session_id"]


async def fill_logbook(base: str, token: str) -> None:
    rows = (
        (
            "POST",
            "/api/practice/logs",
            {
                "activity_type": "scales",
                "duration_seconds": 600,
                "start_time": "2026-01-02T08:00:00Z",
                "notes": "C major",
            },
        ),
        ("POST", "/api/goals", {"title": "Play BWV 66.6 at 240"}),
        ("POST", "/api/repertoire", {"work_title": "Christ lag in Todesbanden"}),
        ("POST", "/api/practice/templates", {"name": "Warm-up", "activity_type": "scales"}),
        ("PUT", "/api/users/me/preferences", {"theme": "dark"}),
    )
    for method, path, body in rows:
        status, answer = await call(base, method, path, body, token=token)
        assert status in (200, 201), answer


async def get(base: str, path: str, token: str | None) -> tuple[int, bytes, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(base + path, headers=headers) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


def tutti(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], capture_output=True, text=True, timeout=120
    )


def database_cells(path) -> list[tuple[str, str, bytes]]:
    """Every non-null cell of every table, as bytes: (table, column, value)."""
    engine = create_engine(f"sqlite:///{path}")
    meta = MetaData()
    meta.reflect(engine)
    cells = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is None:
                        continue
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    cells.append((table.name, column.name, blob))
    engine.dispose()
    return cells


def redis_blobs(url: str) -> list[tuple[bytes, bytes]]:
    """Every key of the Redis server with each of its names/values: (key, blob)."""
    client = redis_sync.Redis.from_url(url)
    out = []
    for key in client.scan_iter(count=1000):
        out.append((key, key))
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [b for kv in client.hgetall(key).items() for b in kv]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "stream":
            values = [b for _, f in client.xrange(key) for kv in f.items() for b in kv]
        else:
            values = []
        out += [(key, v) for v in values]
    client.close()
    return out


async def test_export_has_everything_of_the_user_and_nothing_of_others(fresh_server):
    server = fresh_server()
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    ada, tokens = await account(server, address)
    bo = await connected(server.url, "Bo")
    midi = chorale_midi("bach/bwv66.6")
    piece = await upload_piece(ada, midi, title="export duet")
    finished = await play_duet(ada, bo, piece["id"], midi)
    await fill_logbook(server.url, ada.token)

    status, body, headers = await get(server.url, "/api/users/me/data", ada.token)
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert "attachment" in headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(body))
    raw = archive.read("data.json")
    data = json.loads(raw)
    assert data["account"]["id"] == ada.user["id"] and data["account"]["email"] == address
    assert data["preferences"]["data"] == {"theme": "dark"}
    assert {log["activity_type"] for log in data["practice_logs"]} == {"scales", "ensemble_reading"}
    assert [g["title"] for g in data["goals"]] == ["Play BWV 66.6 at 240"]
    assert [r["work_title"] for r in data["repertoire"]] == ["Christ lag in Todesbanden"]
    assert [t["name"] for t in data["templates"]] == ["Warm-up"]
    assert data["sync"]["version"] >= 5
    [progress] = data["progress"]  # XP and streaks from the logs above
    assert progress["xp"] > 0
    assert "first_session" in {a["code"] for a in data["achievements"]}
    assert data["starred_pieces"] == []
    [device] = data["devices"]  # the login's refresh token, without the token
    assert device["revoked_at"] is None and "token_hash" not in device
    assert [link["email"] for link in data["login_links"]] == [address]
    assert all("token_hash" not in link for link in data["login_links"])
    [session] = data["sessions"]
    assert session["id"] == finished["session_id"] and session["you_hosted"] is True
    mine = finished["results"][ada.user["id"]]
    assert session["your_result"]["notes_matched"] == mine["notes_matched"]
    assert sorted((p["part"], p["you"]) for p in session["participants"]) == [
        ("Bass", False),
        ("Soprano", True),
    ]
    recording = mido.MidiFile(file=io.BytesIO(archive.read(session["recording"])))
    assert len(recording.tracks) == 3  # conductor + two players
    [upload] = data["uploaded_pieces"]
    assert archive.read(upload["file"]) == midi
    # Bo's id appears nowhere in Ada's export (his part is named, he is not).
    assert bo.user["id"].encode() not in raw

    status, body, _ = await get(server.url, "/api/users/me/data?format=json", ada.token)
    as_json = json.loads(body)
    assert status == 200
    assert as_json["sessions"][0]["recording_url"] == (
        f"/api/sessions/{finished['session_id']}/recording.mid"
    )
    assert as_json["uploaded_pieces"][0]["file_url"] == f"/api/pieces/{piece['id']}/midi"
    status, body, _ = await get(server.url, "/api/users/me/data?format=xml", ada.token)
    assert (status, json.loads(body)["error"]["code"]) == (400, "invalid_value")
    status, body, _ = await get(server.url, "/api/users/me/data", None)
    assert (status, json.loads(body)["error"]["code"]) == (401, "missing_token")
    await ada.disconnect()
    await bo.disconnect()


async def test_delete_deactivates_at_once_and_the_purge_leaves_nothing(fresh_server, redis):
    server = fresh_server("--redis-url", redis.url)
    address = f"zelda-{uuid.uuid4().hex[:8]}@example.com"
    ada, tokens = await account(server, address)
    ada_id, name = ada.user["id"], ada.user["display_name"]
    tablet = TuttiClient(server.url)
    tablet.token = ada.token
    await tablet.connect(device_name="tablet")
    bo = await connected(server.url, "Bo")
    midi = chorale_midi("bach/bwv66.6")
    piece = await upload_piece(ada, midi, title="purge duet")
    finished = await play_duet(ada, bo, piece["id"], midi)
    solo = await solo_jam(ada)
    await fill_logbook(server.url, ada.token)

    # Delete: deactivated at once.
    status, _ = await call(server.url, "DELETE", "/api/users/me", token=ada.token)
    assert status == 204
    for client in (ada, tablet):
        for _ in range(100):
            if not client.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.sio.connected
    assert ada.received.get("account:deleted")
    for method, path in (
        ("GET", "/api/users/me"),
        ("GET", "/api/users/me/data"),
        ("DELETE", "/api/users/me"),
        ("GET", "/api/practice/logs"),
    ):
        status, answer = await call(server.url, method, path, token=ada.token)
        assert (status, answer["error"]["code"]) == (401, "account_deleted"), path
    again = TuttiClient(server.url)
    again.token = ada.token
    with pytest.raises(TuttiError) as refused:
        await again.connect()
    assert refused.value.code == "account_deleted"
    status, answer = await call(server.url, "POST", "/api/auth/login", {"email": address})
    assert (status, answer["error"]["code"]) == (403, "account_deleted")
    status, answer = await call(
        server.url, "POST", "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    assert (status, answer["error"]["code"]) == (403, "account_deleted")
    # Bo is not affected.
    session = await bo.fetch_json(f"/api/sessions/{finished['session_id']}")
    assert set(session["results"]) == {ada_id, bo.user["id"]}

    # The purge: not before purge_after_days (30), then everything goes.
    soon = (datetime.now(UTC) + timedelta(days=29)).isoformat()
    common = ("--data-dir", str(server.data_dir), "--redis-url", redis.url)
    run = tutti("users", "purge", "--now", soon, *common)
    assert run.returncode == 0 and "purged 0 user(s)" in run.stdout, run.stderr
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    run = tutti("users", "purge", "--now", later, *common)
    assert run.returncode == 0 and "purged 1 user(s)" in run.stdout and ada_id in run.stdout

    traces = [ada_id.encode(), address.encode(), name.encode()]
    found = [
        (t, c) for t, c, blob in database_cells(server.database) if any(x in blob for x in traces)
    ]
    assert found == []
    assert [k for k, blob in redis_blobs(redis.url) if any(x in blob for x in traces)] == []

    # Bo keeps his session and result; Ada's part is anonymised, her track gone.
    session = await bo.fetch_json(f"/api/sessions/{finished['session_id']}")
    assert set(session["results"]) == {bo.user["id"]}
    assert session["host_user_id"] is None and session["name"] == "Shared session"
    gone = [p for p in session["participants"] if p["user_id"] is None]
    assert gone == [
        {"user_id": None, "part": "Soprano", "role": "player", "complete": True, "deleted": True}
    ]
    song = mido.MidiFile(
        file=io.BytesIO(
            await bo.fetch_bytes(f"/api/sessions/{finished['session_id']}/recording.mid")
        )
    )
    assert [t.name for t in song.tracks[1:]] == ["Bo (Bass)"]
    with sqlite3.connect(server.database) as db:
        assert db.execute(
            "SELECT count(*) FROM practice_sessions WHERE id = ?", (solo,)
        ).fetchone() == (0,)
        assert db.execute(
            "SELECT uploaded_by FROM sheet_music WHERE id = ?", (piece["id"],)
        ).fetchone() == (None,)
    # The address is free again: a new login makes a new, empty account.
    fresh = await log_in(server, address)
    assert fresh["user"]["id"] != ada_id
    await bo.disconnect()


async def test_serve_runs_the_purge_job(fresh_server):
    server = fresh_server("--purge-after-days", "0", "--purge-interval-s", "0.2")
    guest = await connected(server.url, "Short stay")
    await fill_logbook(server.url, guest.token)
    status, _ = await call(server.url, "DELETE", "/api/users/me", token=guest.token)
    assert status == 204
    for _ in range(100):
        with sqlite3.connect(server.database) as db:
            left = db.execute("SELECT count(*) FROM users WHERE id = ?", (guest.user["id"],))
            # The job logs after its commit: wait for both.
            if left.fetchone() == (0,) and "purged" in server.log.read_text():
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the purge job did not run")
    assert f"user {guest.user['id']} purged" in server.log.read_text()
    status, answer = await call(server.url, "GET", "/api/users/me", token=guest.token)
    assert (status, answer["error"]["code"]) == (401, "unknown_user")


def test_purge_cli_refuses_a_bad_time(tmp_path):
    run = tutti("users", "purge", "--now", "yesterday", "--data-dir", str(tmp_path))
    assert run.returncode == 2 and "not an ISO 8601 time" in run.stderr


def test_the_export_covers_every_table_of_a_user():
    """A new table with a user's rows must be added to the export (and is purged anyway)."""
    import inspect

    from server.db.models import Base
    from server.services import privacy

    source = inspect.getsource(privacy.export_user) + inspect.getsource(privacy._participates)
    for table in Base.metadata.sorted_tables:
        if any(fk.column.table.name == "users" for fk in table.foreign_keys):
            model = next(m for m in Base.registry.mappers if m.local_table is table).class_
            assert model.__name__ in source, f"{table.name} is missing from export_user"
