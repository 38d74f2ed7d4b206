"""No finished session is ever lost: a room that finishes while the database takes no writes
is spooled, announced at once with ``saved: false``, saved when the database is back (then
``session:saved``), and saved by the next process if this one is killed meanwhile. Saved once.

The database is held with ``BEGIN EXCLUSIVE`` from another process (this test), as a long
migration, a backup or another writer would. Before the spool, the host's ``room:end`` got
``internal_error``, players never got ``room:finished``, and the session was gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time

import aiohttp

from tests.e2e.test_accounts import play_free_room
from tests.play import connected
from tests.servers import start_server


@contextlib.contextmanager
def database_locked(path):
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def sessions_in(path, session_id: str) -> int:
    with sqlite3.connect(path, timeout=30) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM practice_sessions WHERE id = ?", (session_id,)
        ).fetchone()
    return count


async def backlog(client) -> int:
    return (await client.fetch_json("/readyz"))["backlog"]["finished_rooms"]


async def test_a_room_finished_while_the_database_is_locked_is_saved_later(tmp_path):
    proc = start_server(tmp_path / "data")
    database = proc.data_dir / "tutti.db"
    try:
        host = await connected(proc.url, "host")
        player = await connected(proc.url, "player")
        room_id = await play_free_room(host, player, end=False)
        with database_locked(database):
            started = time.monotonic()
            ended = await host.call("room:end", {"room_id": room_id}, timeout=20)
            finished = await player.wait_for("room:finished", timeout=20)
            took = time.monotonic() - started
            assert finished["session_id"] == ended["session_id"]
            assert finished["saved"] is False
            assert (tmp_path / "data" / "spool" / f"{ended['session_id']}.json").exists()
            assert took < 10  # announced, not held until the database is back
            await asyncio.sleep(3)  # several failed attempts while it lasts
        saved = await player.wait_for("session:saved", timeout=30)
        assert saved == {"room_id": room_id, "session_id": ended["session_id"]}
        assert sessions_in(database, ended["session_id"]) == 1
        assert not list((tmp_path / "data" / "spool").glob("*.json"))
        assert await backlog(host) == 0
        session = await host.fetch_json(f"/api/sessions/{ended['session_id']}")
        assert {p["user_id"] for p in session["participants"]} >= {player.user["id"]}
        await host.disconnect()
        await player.disconnect()
    finally:
        proc.stop()


async def test_a_spooled_room_is_saved_once_by_the_next_process(tmp_path):
    data = tmp_path / "data"
    proc = start_server(data)
    database = data / "tutti.db"
    host = await connected(proc.url, "host")
    player = await connected(proc.url, "player")
    room_id = await play_free_room(host, player, end=False)
    with database_locked(database):
        ended = await host.call("room:end", {"room_id": room_id}, timeout=20)
        finished = await player.wait_for("room:finished", timeout=20)
        assert finished["saved"] is False
        proc.stop(signal.SIGKILL)  # dies with the room only in its spool
    await host.disconnect()
    await player.disconnect()
    assert sessions_in(database, ended["session_id"]) == 0
    proc = start_server(data)
    try:
        deadline = time.monotonic() + 30
        while sessions_in(database, ended["session_id"]) == 0:
            assert time.monotonic() < deadline, "the spooled room was not saved"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        assert sessions_in(database, ended["session_id"]) == 1
        assert not list((data / "spool").glob("*.json"))
        assert "was spooled, not saved" in proc.log.read_text()
    finally:
        proc.stop()


async def test_a_write_while_the_database_is_held_answers_503_not_500(tmp_path):
    """Found by the chaos run: a guest login while another process held the write lock
    past ``busy_timeout`` answered ``500 internal_error`` with a traceback in the log."""
    proc = start_server(tmp_path / "data")
    try:
        async with aiohttp.ClientSession() as http:
            with database_locked(proc.data_dir / "tutti.db"):
                async with http.post(
                    f"{proc.url}/api/auth/guest", json={"display_name": "late"}
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 503, body
                    assert body["error"]["code"] == "database_unavailable"
                    assert resp.headers["Retry-After"] == "1"
            async with http.post(f"{proc.url}/api/auth/guest", json={"display_name": "ok"}) as resp:
                assert resp.status == 201
        assert "Traceback" not in proc.log.read_text()
    finally:
        proc.stop()
