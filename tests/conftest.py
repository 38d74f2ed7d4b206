"""Shared fixtures: real servers, Redis and PostgreSQL on free ports, for every test package."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from tests.servers import start_postgres, start_redis, start_server

# pytest keeps only the last three temp roots of a user and deletes older ones, so a second
# checkout's test run deleted the data folders (and a PostgreSQL cluster) of a run still
# going. Each checkout gets a temp root of its own; pytest reads this when first asked.
_CHECKOUT = hashlib.sha1(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:8]
if not os.environ.get("PYTEST_DEBUG_TEMPROOT"):
    os.environ["PYTEST_DEBUG_TEMPROOT"] = os.path.join(
        tempfile.gettempdir(), f"tutti-tests-{_CHECKOUT}"
    )
os.makedirs(os.environ["PYTEST_DEBUG_TEMPROOT"], exist_ok=True)

# Short timings so a piece ends soon after its last note; still real time.
FAST = ("--grace-ms", "1500", "--start-delay-ms", "300")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real ``tutti serve`` process for the whole session (SQLite in a temp folder)."""
    proc = start_server(tmp_path_factory.mktemp("tutti-data"), *FAST)
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A ``tutti serve`` process of the test's own."""
    started = []

    def start(*extra: str, **kwargs):
        proc = start_server(tmp_path / f"data{len(started)}", *FAST, *extra, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    """A private real ``redis-server`` on its own port."""
    proc = start_redis(tmp_path_factory.mktemp("redis"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A private real PostgreSQL server on its own port (started with initdb/pg_ctl)."""
    proc = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield proc
    proc.stop()
