"""Progress recomputed just after a write commits, off the write's critical path.

:func:`server.services.progress.refresh_progress` reads the user's whole live
logbook (several queries). Inside every log write's transaction it held
SQLite's one writer for those queries too, and under 200 REST users the
writes queued behind each other (quick-log p50 280 ms, p95 1.3 s). Now a
write calls :func:`refresh_after_commit`: the user is marked in the
session; once the transaction commits, the application's
:class:`ProgressRefresher` recomputes that user's progress in a transaction
of its own, a burst of writes of one user coalescing into one refresh.
Progress and analytics routes call :meth:`ProgressRefresher.settle` first,
so a user reads their own writes. A session without a refresher (the CLI,
tests of the store) refreshes inline, as before.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import event, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from server.db.models import PracticeLog, UserProgress
from server.services.progress import refresh_progress

log = logging.getLogger("tutti.progress")

REFRESHER = "tutti_progress_refresher"  # Session.info key: the app's refresher
PENDING = "tutti_progress_pending"  # Session.info key: users written in this transaction


class ProgressRefresher:
    """Recomputes users' progress after their writes commit, one task per process."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], delay_s: float = 0.05):
        self.sessionmaker = sessionmaker
        self.delay_s = delay_s  # lets a burst of one user's writes coalesce
        self._pending: set[str] = set()
        self._running: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None

    def mark(self, user_ids: set[str]) -> None:
        """Refresh ``user_ids`` soon (called after a commit, on the event loop)."""
        self._pending |= user_ids
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await asyncio.sleep(self.delay_s)
        while self._pending:
            user_id = self._pending.pop()
            await self._refresh(user_id)

    async def _refresh(self, user_id: str) -> None:
        done = asyncio.get_running_loop().create_future()
        self._running[user_id] = done
        try:
            async with self.sessionmaker.begin() as db:
                await refresh_progress(db, user_id)
        except Exception:  # noqa: BLE001 - the next write or read refreshes again
            log.exception("progress of user %s: refresh failed", user_id)
        finally:
            del self._running[user_id]
            done.set_result(None)

    async def settle(self, user_id: str) -> None:
        """Wait until ``user_id``'s committed writes are reflected in their progress."""
        running = self._running.get(user_id)
        if running is not None:
            await running
        if user_id in self._pending:
            self._pending.discard(user_id)
            await self._refresh(user_id)

    async def close(self) -> None:
        """Finish the pending refreshes (the application is shutting down)."""
        if self._task is not None:
            await self._task


async def refresh_after_commit(db: AsyncSession, user_id: str) -> None:
    """Refresh ``user_id``'s progress once ``db``'s transaction commits (inline without
    a refresher)."""
    refresher = db.info.get(REFRESHER)
    if refresher is None:
        await refresh_progress(db, user_id)
        return
    db.info.setdefault(PENDING, set()).add(user_id)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    refresher = session.info.get(REFRESHER)
    if pending and refresher is not None:
        refresher.mark(pending)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


async def stale_users(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    """Users with a practice log written (or deleted) after their progress was last computed,
    or with logs and no progress at all: what a process killed between a log's commit and
    its refresh leaves behind."""
    last = (
        select(PracticeLog.user_id, func.max(PracticeLog.updated_at).label("last"))
        .group_by(PracticeLog.user_id)
        .subquery()
    )
    stmt = (
        select(last.c.user_id)
        .outerjoin(UserProgress, UserProgress.user_id == last.c.user_id)
        .where(or_(UserProgress.user_id.is_(None), last.c.last > UserProgress.updated_at))
    )
    async with sessionmaker() as db:
        return list((await db.execute(stmt)).scalars())


async def refresh_stale(sessionmaker: async_sessionmaker[AsyncSession], refresher) -> int:
    """Queue a refresh of every :func:`stale_users` on ``refresher`` (at start-up); how many."""
    users = await stale_users(sessionmaker)
    if users:
        log.info("progress of %d user(s) is older than their logs: recomputing", len(users))
        refresher.mark(set(users))
    return len(users)


def install(sessionmaker: async_sessionmaker[AsyncSession]) -> ProgressRefresher:
    """A refresher for the sessions ``sessionmaker`` makes from now on."""
    refresher = ProgressRefresher(sessionmaker)
    sessionmaker.configure(info={REFRESHER: refresher})
    return refresher


async def settle(refresher: ProgressRefresher | None, user_id: str) -> None:
    """Wait for ``user_id``'s pending refresh on ``refresher``, if there is one."""
    if refresher is not None:
        await refresher.settle(user_id)
