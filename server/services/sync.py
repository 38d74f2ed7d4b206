"""Offline-first sync of the practice logbook: push, pull, poke.

Every device of a user keeps a local copy of the logbook (entries, goals,
repertoire, templates, preferences — :mod:`server.services.logbook`) and an outbox of
its own changes. The server is the single order of truth.

**Push** ``{"client_id", "mutations": [...]}`` (at most 100). A mutation is
``{"mutation_id": int ≥ 1, "entity", "op": "put" | "delete", "id": str (1–64,
client-generated; preferences: omitted or "me"), "fields": {...}}``; a put
names only the fields the device changed. Each ``client_id`` (one install of
the app) numbers its mutations 1, 2, 3, … and the server keeps the last id it
applied per (user, client) in ``client_mutations``. One push is one database
transaction; its mutations are taken in ``mutation_id`` order:

* ``mutation_id ≤ last``: already applied → skipped (a retried or duplicated
  push is harmless: exactly once);
* ``== last + 1``: applied, ``last`` becomes it;
* ``> last + 1``: a gap → the push stops with ``mutation_gap``; the client
  resends from ``last + 1``.

A mutation the server refuses (bad fields, someone else's id, …) changes
nothing, takes no version, but is *consumed*: it counts as applied-with-error (``last`` moves
to it) and the push stops there with the error. The client drops it from
its outbox (its optimistic effect disappears when it pulls) and sends the
rest; one poisoned mutation can never wedge a device's outbox, and later
mutations are never applied without the client having seen the refusal.
``fields`` nested deeper than :data:`server.services.schemas.MAX_JSON_DEPTH`
levels is such a refusal (``too_deep``), checked before anything could fail
on it. Unexpected server errors roll the whole push back and consume nothing.

The answer — REST body or Socket.IO ack, the same on both — is
``{"last_mutation_id", "version"}`` plus ``"error": {"code", "message",
"mutation_id"}`` when the push stopped early. ``version`` is the user's sync
version after the push: once the device has pulled that far, its pull
includes every change of the push.

**Writes.** A put of a new id creates (the entity's required fields must be
there); a put of an existing id patches the named fields; a put of a deleted
id is ignored (delete wins: a tombstone is final); a put or delete of an id
owned by another user is refused ``not_found``, exactly like an id that does
not exist: another user's row is never read, changed or revealed. Every write takes
``version = next_version(db, user_id)`` in the transaction that writes the
row and stores it there; a delete sets ``deleted_at`` and a new version (a tombstone that
every device pulls). A write that changes nothing takes no version.
``updated_at`` comes from the server clock. Client-supplied times are data;
nothing is ever ordered by a client clock.

Ids are made by the clients and are global keys of their table: a put of
an id another user's row holds is refused ``not_found`` and never creates a
second row. Clients must use random ids (uuid4 hex): with 122 random bits
nobody can guess another user's ids, so the one thing a refused create
tells — that the id is taken — stays theoretical.

**REST writes** (:mod:`server.rest.logbook`) go through the same write path
as one mutation each, without a ``client_id`` and without
``client_mutations`` bookkeeping (:meth:`SyncService.write`): same versions,
tombstones and pokes; a refused one changes nothing.

**Conflicts.** The server applies mutations in the order it receives them
and a put carries only the changed fields, so concurrent edits merge per
field: two devices changing different fields of one goal both survive; when
both change the same field, the one the server applied last wins, whatever
the devices' clocks said.

**Pull** ``cursor`` (int ≥ 0), ``limit`` (1–1000, default 500) →
``{"changes": [{"entity", "id", "version", "deleted", "fields"}], "cursor",
"has_more"}``: the user's rows whose version is above the cursor, in version
order across every synced table, each with its full current fields
(tombstones have ``"deleted": true`` and no fields); ``cursor`` is the
highest version returned (the given one when nothing is new). Room logs
(``source: "room"``) are in the stream as ``logbook_entry``.

Why no reader skips a change: a user's versions are taken by an ``UPDATE``
of their ``user_sync`` row in the writer's transaction, which holds that
row's (on SQLite: the database's) write lock until commit, so changes commit
in version order; and a pull finds its changes with *one* statement (a
``UNION ALL`` over the tables), which reads one snapshot. Seeing version n+1
therefore means having seen version n. (The rows are then read by id; a
row whose version moved on in between ends the page early, ``has_more``.)
Every push and REST write first takes that lock
(before reading ``client_mutations``), so two pushes of one user — even two
copies of one push — are applied one after the other.

**Progress.** A push or REST write that changed practice logs recomputes the
user's progress (XP, level, streaks, achievements —
:func:`server.services.progress_refresh.refresh_after_commit`): once, after its commit.

**Poke.** After a write commits, the user's devices get ``sync:poke
{"version"}`` (Socket.IO room ``user:{user_id}``; across processes with the
Redis manager), except the device that pushed, and pull.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.errors import RoomError
from server.db.models import (
    ClientMutation,
    utcnow,
)
from server.db.versions import current_version
from server.services.logbook import (
    ENTITIES,
    LOGBOOK_ENTRY,
    PREFERENCES_ID,
)
from server.services.progress_refresh import refresh_after_commit

if TYPE_CHECKING:
    import socketio
from server.services.sync_messages import PULL_LIMIT, PushIn, parse_mutation
from server.services.sync_rows import (
    Mode,
    Written,
    changed_since,
    lock_user,
    own_row,
    write_row,
)

log = logging.getLogger("tutti.sync")


def user_room(user_id: str) -> str:
    """The Socket.IO room holding every connected device of ``user_id``."""
    return f"user:{user_id}"


class SyncService:
    """Push/pull of a user's logbook; pokes the user's devices after each change."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], sio: socketio.AsyncServer
    ) -> None:
        self.sessionmaker = sessionmaker
        self.sio = sio

    # -- push ---------------------------------------------------------------------------

    async def push(
        self, user_id: str, push: PushIn, *, origin_sid: str | None = None
    ) -> dict[str, Any]:
        """Apply ``push`` (validated with :func:`parse_push`) for ``user_id``; see module."""
        error: dict[str, Any] | None = None
        wrote = logs_changed = False
        async with self.sessionmaker.begin() as db:
            version = await lock_user(db, user_id)
            state = await db.get(ClientMutation, (user_id, push.client_id))
            first = last = state.last_mutation_id if state is not None else 0
            for raw in sorted(push.mutations, key=lambda m: m["mutation_id"]):
                mid = raw["mutation_id"]
                if mid <= last:
                    continue  # applied before: a retry, a duplicate, a late copy
                if mid > last + 1:
                    error = {
                        "code": "mutation_gap",
                        "message": f"mutation {mid} after {last}: resend from {last + 1}",
                        "mutation_id": mid,
                    }
                    break
                try:
                    m = parse_mutation(raw)
                    written = await write_row(
                        db, user_id, m.entity, m.op, m.id or PREFERENCES_ID, m.fields
                    )
                except RoomError as exc:
                    # Consumed: the client sees the refusal and drops the mutation.
                    error = {**exc.to_dict(), "mutation_id": mid}
                    last = mid
                    break
                last = mid
                if written.version is not None:
                    wrote, version = True, written.version
                    logs_changed |= written.entity is LOGBOOK_ENTRY
            if logs_changed:
                await refresh_after_commit(db, user_id)  # once per push, before commit
            if state is None and last != first:
                db.add(
                    ClientMutation(user_id=user_id, client_id=push.client_id, last_mutation_id=last)
                )
            elif last != first:
                state.last_mutation_id = last
                state.updated_at = utcnow()
        if wrote:
            await self.poke([user_id], skip_sid=origin_sid, version=version)
        answer: dict[str, Any] = {"last_mutation_id": last, "version": version}
        if error is not None:
            answer["error"] = error
        return answer

    # -- single server-side writes (REST) --------------------------------------------------

    async def write(
        self,
        user_id: str,
        entity: str,
        mode: Mode,
        row_id: str,
        fields: dict[str, Any],
        *,
        server_values: dict[str, Any] | None = None,
        origin_sid: str | None = None,
        fresh_id: bool = False,
    ) -> Written:
        """One write outside any client's mutation sequence (the REST API's path).

        The same rules as a pushed mutation, in its own transaction; raises
        ``RoomError`` (and writes nothing) when refused. ``server_values`` are
        column values the server computed (already valid), applied with ``fields``.
        ``fresh_id``: the server has just made ``row_id`` (a uuid4), so a create
        does not look for an existing row.
        """
        # A create either takes a version or is refused (and rolled back), so it takes
        # the version with the user's lock: one statement less while holding the lock.
        create = mode == "create" and ENTITIES[entity].fields is not None
        async with self.sessionmaker.begin() as db:
            version = await lock_user(db, user_id, bump=create)
            written = await write_row(
                db,
                user_id,
                entity,
                mode,
                row_id,
                fields,
                server_values=server_values,
                taken_version=version if create else None,
                fresh_id=fresh_id and create,
            )
            if written.version is not None and written.entity is LOGBOOK_ENTRY:
                await refresh_after_commit(db, user_id)
        if written.version is not None:
            await self.poke([user_id], skip_sid=origin_sid, version=written.version)
        return written

    async def end_timer(self, user_id: str, row_id: str, fields: dict[str, Any]) -> Written:
        """Stop a running practice timer (a ``source: "timer"`` entry without ``end_time``):
        ``end_time`` = now and ``duration_seconds`` = now − ``start_time``, on the server clock.
        ``fields`` (the caller checked they are annotations only) are written in the
        same change."""
        async with self.sessionmaker.begin() as db:
            await lock_user(db, user_id)
            row = await own_row(db, LOGBOOK_ENTRY, user_id, row_id)
            if row is None or row.source != "timer":
                raise RoomError("not_found", f"no practice session {row_id!r}")
            if row.end_time is not None:
                raise RoomError("already_ended", "this practice session has ended")
            now = utcnow()
            written = await write_row(
                db,
                user_id,
                "logbook_entry",
                "update",
                row_id,
                fields,
                server_values={
                    "end_time": now,
                    "duration_seconds": max(0.0, (now - row.start_time).total_seconds()),
                },
            )
            if written.version is not None:
                await refresh_after_commit(db, user_id)
        if written.version is not None:
            await self.poke([user_id], version=written.version)
        return written

    async def erase(self, user_id: str) -> int:
        """Delete every live row of the user's logbook (each a tombstone) and clear the
        preferences, in one transaction. Returns the number of rows deleted."""
        count = 0
        async with self.sessionmaker.begin() as db:
            await lock_user(db, user_id)
            for entity in ENTITIES.values():
                if entity.fields is None:
                    written = await write_row(
                        db, user_id, entity.name, "delete", PREFERENCES_ID, {}
                    )
                    continue
                model = entity.model
                ids = (
                    await db.scalars(
                        select(model.id).where(model.user_id == user_id, model.deleted_at.is_(None))
                    )
                ).all()
                for row_id in ids:
                    written = await write_row(db, user_id, entity.name, "delete", row_id, {})
                    count += written.version is not None
            await refresh_after_commit(db, user_id)
            version = await current_version(db, user_id)
        await self.poke([user_id], version=version)
        return count

    # -- the one write path ------------------------------------------------------------------

    # -- pull -------------------------------------------------------------------------------

    async def pull(self, user_id: str, cursor: int, limit: int = PULL_LIMIT) -> dict[str, Any]:
        """The user's changes after ``cursor`` in version order (see module)."""
        async with self.sessionmaker() as db:
            # One statement, one snapshot: which rows changed, and at which version.
            keys = (await db.execute(changed_since(user_id, cursor, limit + 1))).all()
            has_more = len(keys) > limit
            keys = keys[:limit]
            rows: dict[tuple[str, str], Any] = {}
            for name, entity in ENTITIES.items():
                ids = [k.id for k in keys if k.entity == name]
                if not ids:
                    continue
                model = entity.model
                if entity.fields is None:
                    found = await db.scalars(select(model).where(model.user_id == user_id))
                    rows.update(((name, PREFERENCES_ID), r) for r in found)
                else:
                    found = await db.scalars(
                        select(model).where(model.id.in_(ids), model.user_id == user_id)
                    )
                    rows.update(((name, r.id), r) for r in found)
        changes = []
        for key in keys:
            row = rows.get((key.entity, key.id))
            if row is None or row.version != key.version:
                # Changed again since the snapshot: stop before it; the next pull gets it.
                has_more = True
                break
            entity = ENTITIES[key.entity]
            deleted = getattr(row, "deleted_at", None) is not None
            changes.append(
                {
                    "entity": key.entity,
                    "id": key.id,
                    "version": row.version,
                    "deleted": deleted,
                    "fields": {} if deleted else entity.to_fields(row),
                }
            )
        return {
            "changes": changes,
            "cursor": changes[-1]["version"] if changes else cursor,
            "has_more": has_more,
        }

    # -- poke -------------------------------------------------------------------------------

    async def poke(
        self,
        user_ids: Iterable[str],
        *,
        skip_sid: str | None = None,
        version: int | None = None,
    ) -> None:
        """Tell every connected device of ``user_ids`` to pull (``sync:poke {"version"}``).

        ``version`` is the version to announce (when one user); by default each
        user's current version is read. Called after the change committed.
        """

        for user_id in dict.fromkeys(user_ids):
            try:
                v = version
                if v is None:
                    async with self.sessionmaker() as db:
                        v = await current_version(db, user_id)
                await self.sio.emit(
                    "sync:poke", {"version": v}, room=user_room(user_id), skip_sid=skip_sid
                )
            except Exception:  # the change is committed; devices also pull on reconnect
                log.exception("sync:poke to %s failed", user_id)


# --------------------------------------------------------------------------- helpers
