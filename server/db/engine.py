"""Engine, sessions and migrations.

SQLite (``sqlite+aiosqlite:///path``) is the default store: every new DBAPI
connection gets ``journal_mode=WAL`` (readers don't block the writer),
``foreign_keys=ON`` (SQLite leaves them off by default), ``busy_timeout=5000``
(ms to wait on a locked database before ``database is locked``) and
``synchronous=NORMAL`` (safe with WAL, far fewer fsyncs); a file database
keeps a pool of 20 connections (:data:`SQLITE_POOL`) and its write
transactions queue in the process (:class:`SQLiteSessionmaker`). Any other
URL (PostgreSQL) is passed to SQLAlchemy unchanged.

The schema is owned by Alembic (``server/migrations``);
:func:`upgrade_database` runs it to head on the engine's own connection, so
no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
"""Absolute path of ``server/migrations`` (Alembic's ``script_location``)."""

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)


SQLITE_POOL = {"pool_size": 20, "max_overflow": 20}
"""Pool of a SQLite file database. The default (5 kept, 10 more opened on demand and
closed when given back) opened and closed connections all the time under load, and
each aiosqlite connection is a new thread started *on the event loop* (blocking it)
plus the pragmas above; 20 kept connections cover the concurrency of hundreds of
users, 20 more absorb peaks."""


def sqlite_url(path: str | Path) -> str:
    """The async SQLAlchemy URL of the SQLite file at ``path``.

    ``sqlite_url("data/tutti.db")`` → ``"sqlite+aiosqlite:///data/tutti.db"``
    (relative); an absolute path gives four slashes. ``":memory:"`` gives an
    in-memory database.
    """
    return f"sqlite+aiosqlite:///{path}"


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``database_url``.

    For SQLite the pragmas above are set on every new connection and the
    parent folder of a file database is created if missing. ``kwargs`` go to
    :func:`sqlalchemy.ext.asyncio.create_async_engine`. Raises
    :class:`sqlalchemy.exc.ArgumentError` for a malformed URL.
    """
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    database = url.database
    in_memory = not database or database == ":memory:" or database.startswith("file:")
    sqlite_file = sqlite and not in_memory
    if sqlite_file:
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Private from the start: SQLite gives its -wal and -shm files the database's mode.
        # Only a new file is touched: no connection can have it open yet (see _writable).
        with contextlib.suppress(FileExistsError):  # another process was first
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        for name, value in SQLITE_POOL.items():
            kwargs.setdefault(name, value)
    engine = create_async_engine(url, **kwargs)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    event.listen(engine.sync_engine, "handle_error", _recycle_after_write_failure)
    if sqlite_file:
        _reopen_read_only_connections(engine, path)
    return engine


def _writable(path: Path) -> bool:
    # access(2), not open(2)+close(2): closing any descriptor of the file would drop this
    # process's POSIX locks on it, SQLite's among them. access() honours the immutable flag
    # and read-only mounts, for root too.
    return os.access(path, os.W_OK)


def _reopen_read_only_connections(engine: AsyncEngine, path: Path) -> None:
    """A connection SQLite opened while the file was not writable stays read-only for good
    (it fell back to ``O_RDONLY``): once the file is writable again, such a connection is
    replaced at its next checkout instead of failing every write it is given."""

    @event.listens_for(engine.sync_engine, "connect")
    def _opened(dbapi_connection: Any, record: Any) -> None:
        record.info["opened_read_only"] = not _writable(path)

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("opened_read_only") and _writable(path):
            raise DisconnectionError("opened while the database file was read-only")


# SQLite errors after which a connection keeps failing though the file is writable again
# (it stays read-only): the pool is emptied, new connections are opened.
STUCK_CONNECTION_ERRORS = ("readonly database", "disk i/o error", "database or disk is full")


UNAVAILABLE_ERRORS = (*STUCK_CONNECTION_ERRORS, "database is locked", "unable to open database")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away, locked or read-only (a fault of the
    moment: worth a retry), rather than a bug: a connection error, a pool timeout, or
    SQLite's ``database is locked`` / ``readonly database`` / ``disk I/O error``."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        message = str(exc.orig).lower()
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) and (
            any(text_ in message for text_ in UNAVAILABLE_ERRORS)
            or "connection" in message
            or isinstance(exc, sa_exc.InterfaceError)
        )
    return False


def _recycle_after_write_failure(context: Any) -> None:
    """Treat a stuck-connection error as a disconnect: SQLAlchemy then invalidates the pool."""
    message = str(context.original_exception).lower()
    if any(text_ in message for text_ in STUCK_CONNECTION_ERRORS):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = True


class SQLiteSessionmaker(async_sessionmaker[AsyncSession]):
    """A session factory whose write transactions (:meth:`begin`) queue on an asyncio lock.

    SQLite has one writer at a time. Left to itself, every waiting writer sits
    in SQLite's busy handler on its own pooled connection, polling with sleeps
    that grow to 100 ms: waiters are served in no order, hold connections the
    readers need, and under load (200 REST users) p95 reached seconds and some
    waited past ``busy_timeout`` (``database is locked``). Queueing the
    ``begin()`` blocks of one process on a FIFO lock *before* they take a
    connection hands the write lock straight to the next writer. Other
    processes on the same file still meet at SQLite's lock (``busy_timeout``).
    Plain sessions (``sessionmaker()``, reads) are not queued: WAL readers
    never wait for the writer. Do not open a ``begin()`` inside another one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:  # type: ignore[override]
        async with self.write_lock, super().begin() as session:
            yield session


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory bound to ``engine``; objects stay usable after commit.

    On SQLite a :class:`SQLiteSessionmaker` (write transactions of this process
    take turns on a FIFO lock).
    """
    if engine.dialect.name == "sqlite":
        return SQLiteSessionmaker(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic :class:`Config` built in code (no ``alembic.ini``).

    With ``connection`` the migrations run on it (see ``migrations/env.py``).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


MIGRATION_LOCK_KEY = 0x7475_7474_69  # "tutti": PostgreSQL advisory lock id of the migrations


async def upgrade_database(engine: AsyncEngine) -> None:
    """Run the Alembic migrations to head, in one transaction on ``engine``, one process at a time.

    Processes started together on one fresh database take turns: on
    PostgreSQL a transaction-scoped advisory lock
    (``pg_advisory_xact_lock``, released at commit), on a SQLite file an
    exclusive ``flock`` on ``<database>.migrate.lock`` beside it (taken in a
    thread, so the event loop never waits on it). The next process then finds
    the schema at head and does nothing. Harmless when already at head. Errors
    from a migration propagate (the transaction is rolled back; on SQLite, DDL
    already executed may remain).
    """
    url = engine.url
    lock_path = None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
    async with _file_lock(lock_path), engine.begin() as conn:
        if url.get_backend_name() == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_upgrade)


@contextlib.asynccontextmanager
async def _file_lock(path: Path | None) -> AsyncIterator[None]:
    """An exclusive advisory lock on ``path`` across processes (POSIX ``flock``); none for ``None``
    or where ``fcntl`` is missing (Windows: one process per database there)."""
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
