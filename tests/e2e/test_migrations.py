"""Migrations are serialised: processes started together on one fresh database all come up.

Before the lock, two ``tutti serve`` started at once on a fresh database raced in the
Alembic migrations, and one exited with ``table users already exists``.
"""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers import start_server

PROCESSES = 4


def start_together(data_dirs, *extra: str):
    with ThreadPoolExecutor(PROCESSES) as pool:
        futures = [pool.submit(start_server, d, *extra) for d in data_dirs]
    procs, errors = [], []
    for future in futures:
        try:
            procs.append(future.result())
        except Exception as exc:  # noqa: BLE001 - report every process that failed
            errors.append(exc)
    return procs, errors


def stop_all(procs) -> None:
    for proc in procs:
        proc.stop()


def test_four_processes_on_one_fresh_sqlite_database(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    url = f"sqlite+aiosqlite:///{shared / 'tutti.db'}"
    dirs = [tmp_path / f"p{i}" for i in range(PROCESSES)]
    procs, errors = start_together(dirs, "--database-url", url)
    try:
        assert not errors, f"{len(errors)} of {PROCESSES} processes failed: {errors[0]}"
        with sqlite3.connect(shared / "tutti.db") as db:
            (heads,) = db.execute("SELECT count(*) FROM alembic_version").fetchone()
        assert heads == 1
    finally:
        stop_all(procs)


def test_four_processes_on_one_fresh_postgresql_database(tmp_path, postgres):
    url = postgres.create_database("race_" + uuid.uuid4().hex[:12])
    dirs = [tmp_path / f"p{i}" for i in range(PROCESSES)]
    procs, errors = start_together(dirs, "--database-url", url)
    try:
        assert not errors, f"{len(errors)} of {PROCESSES} processes failed: {errors[0]}"
    finally:
        stop_all(procs)


@pytest.fixture(autouse=True)
def _no_redis_env(monkeypatch):
    monkeypatch.delenv("TUTTI_REDIS_URL", raising=False)
