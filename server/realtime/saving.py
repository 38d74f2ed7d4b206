"""Saving a finished room (with retries) and the ``room:finished`` payload."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rooms.finished import FinishedRoom
from server.db import finished_rooms
from server.services.progress_refresh import refresh_after_commit

log = logging.getLogger("tutti.rooms")

SAVE_ATTEMPTS = 3


async def save_finished(
    sessionmaker: async_sessionmaker[AsyncSession], finished: FinishedRoom
) -> None:
    """Save ``finished`` once; the database may be briefly locked or away, so up to
    :data:`SAVE_ATTEMPTS` tries, 0.2 s × attempt apart. Raises the last failure."""
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            await finished_rooms.save_finished_room(
                sessionmaker, finished, after_write=refresh_after_commit
            )
            return
        except Exception:
            log.exception("saving session %s failed (attempt %d)", finished.session_id, attempt)
            if attempt == SAVE_ATTEMPTS:
                raise
            await asyncio.sleep(0.2 * attempt)


def finished_payload(finished: FinishedRoom) -> dict[str, Any]:
    """``room:finished``: ``{"room_id", "session_id", "reason", "asynchrony_ms",
    "results": {user_id: result}}``."""
    return {
        "room_id": finished.room_id,
        "session_id": finished.session_id,
        "reason": finished.reason,
        "asynchrony_ms": finished.asynchrony_ms,
        "results": {p.user_id: p.result for p in finished.players},
    }
