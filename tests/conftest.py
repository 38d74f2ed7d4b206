from __future__ import annotations

import pytest

from tests.servers import start_postgres, start_redis, start_server

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
