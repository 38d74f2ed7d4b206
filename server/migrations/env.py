"""Alembic environment for Tutti.

Two ways in:

* Programmatic (the normal path, :func:`server.db.engine.upgrade_database`):
  the caller puts a live synchronous ``Connection`` in
  ``config.attributes["connection"]`` and the migrations run on it, inside the
  caller's transaction.
* Command line / no connection given: an async engine is created from
  ``sqlalchemy.url`` (``-x`` is not used) with the same SQLite pragmas as the
  server, and the migrations run under :func:`asyncio.run`.

SQLite gets ``render_as_batch=True`` so that ALTERs in later migrations are
done by table copy. ``target_metadata`` is the models' metadata (for
autogenerate); :class:`~server.db.models.UTCDateTime` is rendered as plain
``sa.DateTime(timezone=True)`` so migrations don't import the models.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, pool

from server.db.engine import make_engine
from server.db.models import Base, UTCDateTime

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_kwargs(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def run_migrations_offline() -> None:
    """Emit SQL for ``sqlalchemy.url`` without connecting (``--sql``)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url to run migrations offline")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_kwargs(url.split(":", 1)[0].split("+", 1)[0]),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a live synchronous connection."""
    context.configure(connection=connection, **_configure_kwargs(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    """Create an engine for ``url`` (with the server's pragmas) and migrate."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Use the shared connection when given, else connect to ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no connection in config.attributes and no sqlalchemy.url: "
            "use server.db.engine.upgrade_database(engine)"
        )
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
