"""Presence of users' devices (issue 3): stub to be filled in.

The room manager calls these hooks; the real implementation keeps Phoenix-
style presence per user and per room, in-process or in Redis.
"""

from __future__ import annotations

from typing import Any

import socketio

from server.config import Settings


class PresenceService:
    """Hooks the room manager calls when a device connects, changes or leaves."""

    async def start(self) -> None:
        """Begin background work (heartbeats)."""

    async def stop(self) -> None:
        """End background work; forget this process's devices."""

    async def device_connected(self, connection: Any) -> None:
        """A device connected (``connection``: :class:`server.room_manager.Connection`)."""

    async def device_changed(self, connection: Any, room_id: str | None, status: str) -> None:
        """A device joined or left a room, or its status changed
        (``status``: ``idle``, ``practicing`` or ``listening``)."""

    async def device_disconnected(self, connection: Any) -> None:
        """A device disconnected."""


def make_presence(settings: Settings, sio: socketio.AsyncServer) -> PresenceService:
    """The presence service for ``settings`` (Redis when ``redis_url`` is set)."""
    return PresenceService()
