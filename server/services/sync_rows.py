"""The rows sync writes and reads: per-user version locks, ownership checks, row writes,
and the changes since a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.errors import RoomError
from server.db.models import (
    SheetMusic,
    UserPreferences,
    UserSync,
    utcnow,
)
from server.db.versions import next_version
from server.services.logbook import (
    ENTITIES,
    PREFERENCES_ID,
    Entity,
    check_row,
    merge_preferences,
    read_only_fields,
    row_to_json,
)

if TYPE_CHECKING:
    pass


Mode = Literal["put", "create", "update", "delete"]
"""How a write treats the id: ``put`` upserts (the sync protocol); ``create``
refuses an existing id, ``update`` a missing or deleted one and ``delete`` a
missing one (REST); a sync delete of an own tombstone is a no-op."""


@dataclass
class Written:
    """The outcome of one write: the row as it stands (maybe a tombstone) and the
    version this write gave it (``None``: the write changed nothing)."""

    entity: Entity
    row: Any
    version: int | None

    def json(self) -> dict[str, Any]:
        return row_to_json(self.entity, self.row)


async def lock_user(db: AsyncSession, user_id: str, *, bump: bool = False) -> int:
    """Take the user's write lock before reading anything (see module docstring);
    returns the user's current version — with ``bump``, the next one, taken.

    A no-op ``UPDATE`` of the user's ``user_sync`` row (created at version 0
    when missing): on SQLite it starts the write transaction, on PostgreSQL it
    locks the row, until commit.
    """
    lock = (
        update(UserSync)
        .where(UserSync.user_id == user_id)
        .values(version=UserSync.version + 1 if bump else UserSync.version)
        .returning(UserSync.version)
    )
    version = (await db.execute(lock)).scalar_one_or_none()
    if version is not None:
        return version
    try:
        async with db.begin_nested():
            db.add(UserSync(user_id=user_id, version=int(bump)))
        return int(bump)
    except IntegrityError:
        # Created concurrently (lock it now), or no such user.
        version = (await db.execute(lock)).scalar_one_or_none()
        if version is None:
            raise RoomError("unknown_user", "this token's user no longer exists") from None
        return version


async def own_row(db: AsyncSession, entity: Entity, user_id: str, row_id: str) -> Any:
    row = await db.get(entity.model, row_id)
    if row is None or row.user_id != user_id or row.deleted_at is not None:
        return None
    return row


async def check_piece(db: AsyncSession, entity: Entity, values: dict[str, Any]) -> None:
    piece_id = values.get("piece_id")
    if not entity.piece_fk or piece_id is None:
        return
    if await db.scalar(select(SheetMusic.id).where(SheetMusic.id == piece_id)) is None:
        # A bad reference in a body is a bad request (400), not a missing resource.
        raise RoomError("unknown_piece", f"fields.piece_id: no piece with id {piece_id!r}", 400)


def changed_since(user_id: str, cursor: int, limit: int):
    parts = []
    for name, entity in ENTITIES.items():
        model = entity.model
        row_id = literal(PREFERENCES_ID) if entity.fields is None else model.id
        parts.append(
            select(
                literal(name).label("entity"), row_id.label("id"), model.version.label("version")
            ).where(model.user_id == user_id, model.version > cursor)
        )
    changed = union_all(*parts).subquery()
    return (
        select(changed.c.entity, changed.c.id, changed.c.version)
        .order_by(changed.c.version)
        .limit(limit)
    )


async def write_row(
    db: AsyncSession,
    user_id: str,
    entity_name: str,
    mode: Mode,
    row_id: str,
    fields: dict[str, Any],
    *,
    server_values: dict[str, Any] | None = None,
    taken_version: int | None = None,
    fresh_id: bool = False,
) -> Written:
    """Apply one write in ``db`` (the user's lock is held). Every check comes before
    the first change, so a refusal (``RoomError``) leaves the transaction untouched.
    ``taken_version``: a create's version, already taken with the lock;
    ``fresh_id``: ``row_id`` is new (see :meth:`write`)."""
    entity = ENTITIES[entity_name]
    if entity.fields is None:
        return await write_preferences(db, user_id, mode, fields)
    values = {} if mode == "delete" else entity.parse(fields)
    row = None if fresh_id else await db.get(entity.model, row_id)
    if row is not None and row.user_id != user_id:
        # Someone else's id: refused exactly like an id that does not exist.
        raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")
    now = utcnow()
    if mode == "delete":
        if row is None:
            raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")
        if row.deleted_at is not None:
            return Written(entity, row, None)  # already a tombstone: idempotent
        row.deleted_at = now
        row.updated_at = now
        row.version = await next_version(db, user_id)
        await db.flush()
        return Written(entity, row, row.version)
    if row is None:
        if mode == "update":
            raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")
        values.update(server_values or {})
        missing = [f for f in entity.required if f not in values]
        if missing:
            raise RoomError(
                "missing_field",
                f"fields.{missing[0]}: required to create a {entity.name}",
            )
        await check_piece(db, entity, values)
        check_row(entity, values)
        row = entity.model(id=row_id, user_id=user_id, **{**entity.defaults, **values})
        row.version = taken_version or await next_version(db, user_id)
        row.created_at = row.updated_at = now
        db.add(row)
        await db.flush()
        return Written(entity, row, row.version)
    if row.deleted_at is not None:
        if mode in ("create", "update"):
            raise RoomError(
                "already_exists" if mode == "create" else "not_found",
                f"{entity.name} {row_id!r} "
                + ("was deleted" if mode == "update" else "exists (deleted)"),
            )
        return Written(entity, row, None)  # delete wins
    if mode == "create":
        raise RoomError("already_exists", f"a {entity.name} with id {row_id!r} exists")
    locked = read_only_fields(entity, row, values)
    if locked:
        raise RoomError(
            "read_only_field", f"fields.{locked[0]}: a room log's measurements are read-only"
        )
    values.update(server_values or {})
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return Written(entity, row, None)
    await check_piece(db, entity, changed)
    times = {name: getattr(row, name, None) for name in ("start_time", "end_time")}
    check_row(entity, {**times, **changed})  # before any change to the row
    for key, value in changed.items():
        setattr(row, key, value)
    row.version = await next_version(db, user_id)
    row.updated_at = now
    await db.flush()
    return Written(entity, row, row.version)


async def write_preferences(
    db: AsyncSession, user_id: str, mode: Mode, fields: dict[str, Any]
) -> Written:
    entity = ENTITIES["preferences"]
    patch = {} if mode == "delete" else entity.parse(fields)
    row = await db.get(UserPreferences, user_id)
    current = dict(row.data or {}) if row is not None else {}
    merged = {} if mode == "delete" else merge_preferences(current, patch)
    if row is not None and merged == current:
        return Written(entity, row, None)
    if row is None:
        if not merged and mode == "delete":
            return Written(entity, UserPreferences(user_id=user_id, data={}, version=0), None)
        row = UserPreferences(user_id=user_id, data=merged)
        db.add(row)
    else:
        row.data = merged
    row.version = await next_version(db, user_id)
    row.updated_at = utcnow()
    await db.flush()
    return Written(entity, row, row.version)
