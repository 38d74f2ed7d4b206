"""Offline-first sync of the practice logbook (issue 3): stub to be filled in."""

from __future__ import annotations

from collections.abc import Iterable

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class SyncService:
    """Push/pull of a user's logbook; pokes the user's devices after each change."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], sio: socketio.AsyncServer
    ) -> None:
        self.sessionmaker = sessionmaker
        self.sio = sio

    async def poke(self, user_ids: Iterable[str], *, skip_sid: str | None = None) -> None:
        """Tell every connected device of ``user_ids`` to pull (``sync:poke``)."""
