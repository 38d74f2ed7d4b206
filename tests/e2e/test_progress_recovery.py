"""Progress is never left stale by a killed process: at start-up, users whose logs are newer
than their progress get it recomputed.

A SIGKILL between a log's commit and its progress refresh (which runs just after the commit,
in its own transaction) leaves exactly this state: the log saved, the progress not updated.
The test makes that state in the real database (the progress row put back to before the log)
while the server is down, then starts it again.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.progress_helpers import Guest
from tests.servers import start_server


async def test_progress_older_than_the_logs_is_recomputed_at_start_up(tmp_path):
    data = tmp_path / "data"
    proc = start_server(data)
    try:
        guest = await Guest.login(proc.url, "ada")
        await guest.log(datetime.now(UTC) - timedelta(hours=1), seconds=1200)
        before = await guest.get("/api/progress/overview")
    finally:
        proc.stop()
    assert before["xp"] > 0
    with sqlite3.connect(data / "tutti.db") as db:  # what the killed process left behind
        db.execute(
            "UPDATE user_progress SET xp = 0, total_seconds = 0, updated_at = ?",
            ("2000-01-01 00:00:00.000000",),
        )
    proc = start_server(data)
    try:
        after = await Guest(proc.url, guest.token, {"id": guest.id}).get("/api/progress/overview")
    finally:
        proc.stop()
    assert after["xp"] == before["xp"]
    assert after["total_seconds"] == before["total_seconds"]
    assert "recomputing" in proc.log.read_text()
