"""The process that finishes a room dies (SIGKILL) after claiming the finish and before
announcing it: another process takes the finish over under the same session id, so the
room is saved, once (before: the others waited 12 s for a ``room:finished`` that never came
and the room was never saved)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest

from tests.conftest import FAST
from tests.e2e.test_accounts import play_free_room
from tests.e2e.test_spool import database_locked
from tests.play import connected
from tests.servers import start_server

pytestmark = pytest.mark.realtime


def sessions_of(path, room_id: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        rows = db.execute("SELECT id FROM practice_sessions WHERE room_id = ?", (room_id,))
        return [r[0] for r in rows.fetchall()]


async def test_the_finishing_process_dies_and_another_saves_the_room_once(
    tmp_path, fresh_server, redis
):
    database = tmp_path / "shared.db"
    shared = ("--redis-url", redis.url, "--database-url", f"sqlite+aiosqlite:///{database}")
    one = fresh_server(*shared)
    two = fresh_server(*shared)
    host = await connected(one.url, "host")
    other = await connected(two.url, "other")
    room_id = await play_free_room(host, other, end=False)
    # The database held: the finishing process (one) spools the room and waits 1 s for the
    # database before announcing; it is killed in between.
    with database_locked(database):
        ending = asyncio.ensure_future(host.call("room:end", {"room_id": room_id}, timeout=5))
        await asyncio.sleep(0.5)
        one.proc.kill()
        one.proc.wait()
        with contextlib.suppress(Exception):
            await ending
        finished = await other.wait_for("room:finished", timeout=40)
        assert finished["reason"] == "host_ended"
        assert finished["saved"] is False
    saved = await other.wait_for("session:saved", timeout=40)
    assert saved["session_id"] == finished["session_id"]
    assert sessions_of(database, room_id) == [finished["session_id"]]
    # The dead process's spool (same session id) is saved by its next start: still once.
    again = start_server(one.data_dir, *FAST, *shared)
    try:
        for _ in range(100):
            if not list((one.data_dir / "spool").glob("*.json")):
                break
            await asyncio.sleep(0.2)
        assert not list((one.data_dir / "spool").glob("*.json"))
        assert sessions_of(database, room_id) == [finished["session_id"]]
    finally:
        again.stop()
    await other.disconnect()
