"""Saving finished rooms: spooled first, saved with retries until the database takes them,
and the ``room:finished`` / ``session:saved`` payloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.finished import FinishedRoom
from server.db import finished_rooms
from server.services.progress_refresh import refresh_after_commit
from server.services.spool import FinishedRoomSpool
from server.services.sync import user_room

log = logging.getLogger("tutti.rooms")

QUICK_SAVE_S = 1.0
"""How long ``room:finished`` waits for the database before it goes out with ``saved: false``."""
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Backoff between attempts (the last one repeats until the save succeeds)."""


class SessionSaver:
    """Saves each finished room exactly once, never losing one.

    :meth:`save` spools the room (:class:`~server.services.spool.FinishedRoomSpool`)
    and starts saving it, attempt after attempt with backoff (:data:`RETRY_DELAYS_S`)
    until the database takes it; the spool file goes only then. It waits at most
    :data:`QUICK_SAVE_S` and returns whether the room is in the database; when not,
    ``on_saved(finished)`` is called once it is. Saves are idempotent by session id.
    :meth:`replay` does the same, at start-up, for what an earlier process spooled.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        spool: FinishedRoomSpool | None,
        on_saved: Callable[[FinishedRoom], Awaitable[None]] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.spool = spool
        self.on_saved = on_saved
        self._saving: dict[str, asyncio.Task] = {}
        self._announce: set[str] = set()  # told "saved: false": tell them when it is

    @property
    def backlog(self) -> int:
        """Finished rooms not yet in the database (spooled or being saved)."""
        spooled = len(self.spool) if self.spool is not None else 0
        return max(spooled, len(self._saving))

    async def save(self, finished: FinishedRoom) -> bool:
        """Spool ``finished`` and save it; ``True`` when it is in the database within
        :data:`QUICK_SAVE_S`, else ``False`` (it is saved later, then ``on_saved``)."""
        if self.spool is not None:
            await asyncio.to_thread(self.spool.put, finished)
        task = self._start(finished)
        try:
            await asyncio.wait_for(asyncio.shield(task), QUICK_SAVE_S)
        except TimeoutError:
            if task.done() and not task.cancelled() and task.exception() is None:
                return True
            self._announce.add(finished.session_id)
            return False
        return True

    async def save_and_wait(self, finished: FinishedRoom) -> None:
        """:meth:`save`, then wait until the database has it (an audio job's session,
        whose id is told only once it can be read)."""
        if not await self.save(finished):
            task = self._saving.get(finished.session_id)
            if task is not None:
                await asyncio.shield(task)

    def _start(self, finished: FinishedRoom) -> asyncio.Task:
        task = self._saving.get(finished.session_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._save_until_done(finished))
            self._saving[finished.session_id] = task
        return task

    async def _save_until_done(self, finished: FinishedRoom) -> None:
        session_id = finished.session_id
        try:
            for attempt in range(10**9):
                try:
                    await finished_rooms.save_finished_room(
                        self.sessionmaker, finished, after_write=refresh_after_commit
                    )
                    break
                except Exception as exc:  # noqa: BLE001 - locked, away, read-only: again
                    log.warning(
                        "session %s not saved (attempt %d): %s", session_id, attempt + 1, exc
                    )
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            if self.spool is not None:
                await asyncio.to_thread(self.spool.remove, session_id)
            if attempt:
                log.info("session %s saved after %d attempts", session_id, attempt + 1)
        finally:
            self._saving.pop(session_id, None)
        if session_id in self._announce:
            self._announce.discard(session_id)
            if self.on_saved is not None:
                await self.on_saved(finished)

    async def replay(self) -> int:
        """Save what the spool holds from an earlier process (in the background); how many."""
        if self.spool is None:
            return 0
        pending = await asyncio.to_thread(self.spool.pending)
        for finished in pending:
            log.info("session %s was spooled, not saved: saving it now", finished.session_id)
            self._start(finished)
        return len(pending)

    async def close(self) -> None:
        """Stop saving (shutdown): what is not saved stays in the spool for the next start."""
        tasks = list(self._saving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def finished_payload(finished: FinishedRoom, saved: bool = True) -> dict[str, Any]:
    """``room:finished``: ``{"room_id", "session_id", "reason", "asynchrony_ms", "saved",
    "results": {user_id: result}, "partner": {…} | null}`` (the computer partner, apart
    from the players: :meth:`rooms.room.Room.finish`); ``saved`` false means it is spooled and a
    ``session:saved`` follows once the database has it."""
    return {
        "room_id": finished.room_id,
        "session_id": finished.session_id,
        "reason": finished.reason,
        "asynchrony_ms": finished.asynchrony_ms,
        "saved": saved,
        "results": {p.user_id: p.result for p in finished.players},
        "partner": finished.partner,
    }


def saved_payload(finished: FinishedRoom) -> dict[str, Any]:
    """``session:saved``: ``{"room_id", "session_id"}``."""
    return {"room_id": finished.room_id, "session_id": finished.session_id}


async def announce_saved(sio: socketio.AsyncServer, finished: FinishedRoom) -> None:
    """``session:saved`` to every device of the players and spectators of ``finished``."""
    payload = saved_payload(finished)
    for user_id in dict.fromkeys([*(p.user_id for p in finished.players), *finished.spectators]):
        await sio.emit("session:saved", payload, room=user_room(user_id))
