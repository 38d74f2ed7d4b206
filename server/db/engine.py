"""Engine, sessions and migrations.

SQLite (``sqlite+aiosqlite:///path``) is the default store: every new DBAPI
connection gets ``journal_mode=WAL`` (readers don't block the writer),
``foreign_keys=ON`` (SQLite leaves them off by default), ``busy_timeout=5000``
(ms to wait on a locked database before ``database is locked``) and
``synchronous=NORMAL`` (safe with WAL, far fewer fsyncs). Any other URL
(PostgreSQL later) is passed to SQLAlchemy unchanged.

The schema is owned by Alembic (``server/migrations``);
:func:`upgrade_database` runs it to head on the engine's own connection, so
no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
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
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory bound to ``engine``; objects stay usable after commit."""
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


async def upgrade_database(engine: AsyncEngine) -> None:
    """Run the Alembic migrations to head, in one transaction on ``engine``.

    Harmless when already at head. Errors from a migration propagate (the
    transaction is rolled back; on SQLite, DDL already executed may remain).
    """
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
