"""Per-user sync versions, taken inside the writer's transaction.

Every change to a synced row (see :data:`server.db.models.SYNCED_TABLES`)
takes the owner's next version with :func:`next_version` in the same
transaction as the write and stores it on the row. The ``UPDATE`` of the
user's ``user_sync`` row holds its write lock until commit, so one user's
changes commit in version order: a reader that has seen version n has seen
every change before it (the fault of allocating a global sequence apart from
the write, where readers skipped rows, cannot happen).
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import UserSync


async def next_version(db: AsyncSession, user_id: str) -> int:
    """Take ``user_id``'s next sync version (1, 2, …) in ``db``'s transaction.

    Raises :class:`sqlalchemy.exc.IntegrityError` when no such user exists.
    """
    result = await db.execute(
        update(UserSync)
        .where(UserSync.user_id == user_id)
        .values(version=UserSync.version + 1)
        .returning(UserSync.version)
    )
    version = result.scalar_one_or_none()
    if version is not None:
        return version
    try:
        async with db.begin_nested():
            await db.execute(insert(UserSync).values(user_id=user_id, version=1))
        return 1
    except IntegrityError:
        # Either another transaction created the row first (take the next one),
        # or the user does not exist (raise).
        exists = await db.scalar(select(UserSync.user_id).where(UserSync.user_id == user_id))
        if exists is None:
            raise
        return await next_version(db, user_id)


async def current_version(db: AsyncSession, user_id: str) -> int:
    """The newest version taken for ``user_id`` (0 before any change)."""
    version = await db.scalar(select(UserSync.version).where(UserSync.user_id == user_id))
    return version or 0
