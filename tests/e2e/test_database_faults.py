"""A database that stops taking writes, then takes them again (``chattr +i`` on the SQLite
files, as a full or read-only disk does): ``/readyz`` says so while it lasts, and once the
files are writable every write succeeds again, with no restart.

Before: ``/readyz`` answered ``ok`` throughout (it only read), and 90 s after ``chattr -i``
one write in three still failed with "attempt to write a readonly database" until a
restart, because pooled connections kept their read-only state.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.progress_helpers import Guest
from tests.servers import start_server

pytestmark = pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")


def chattr(flag: str, data) -> None:
    # The database and its WAL; not the -shm file, which SQLite maps into memory (an
    # immutable mapping is SIGBUS on the next write, not an error the server can answer).
    files = [str(data / "tutti.db"), str(data / "tutti.db-wal")]
    subprocess.run(["chattr", flag, *files], check=True)


async def readyz(guest: Guest) -> tuple[int, dict]:
    saved, guest.token = guest.token, None
    try:
        return await guest.call("GET", "/readyz")
    finally:
        guest.token = saved


async def test_writes_recover_after_the_database_was_read_only(tmp_path):
    data = tmp_path / "data"
    proc = start_server(data)
    try:
        guest = await Guest.login(proc.url, "ada")
        start = datetime.now(UTC) - timedelta(days=1)
        for i in range(25):  # fill the pool: several connections, each used for writes
            await guest.log(start + timedelta(minutes=i), seconds=60)
        status, body = await readyz(guest)
        assert status == 200 and body["checks"]["database"] == "ok"
        chattr("+i", data)
        try:
            failures = 0
            for i in range(10):
                status, _ = await guest.call(
                    "POST",
                    "/api/practice/logs",
                    {"start_time": (start + timedelta(hours=1, minutes=i)).isoformat()}
                    | {"duration_seconds": 60, "activity_type": "repertoire"},
                )
                failures += status >= 500
            assert failures == 10
            status, body = await readyz(guest)
            assert status == 503 and "database" in body["failed"], body
            # Reads meanwhile open new pooled connections: SQLite opens those read-only.
            reads = await asyncio.gather(
                *(guest.call("GET", "/api/practice/logs") for _ in range(40))
            )
            assert all(status == 200 for status, _ in reads)
        finally:
            chattr("-i", data)
        results = []
        for i in range(30):
            status, _ = await guest.call(
                "POST",
                "/api/practice/logs",
                {"start_time": (start + timedelta(hours=2, minutes=i)).isoformat()}
                | {"duration_seconds": 60, "activity_type": "repertoire"},
            )
            results.append(status)
        assert results == [201] * 30, results
        status, body = await readyz(guest)
        assert status == 200, body
    finally:
        chattr("-i", data)
        proc.stop()
