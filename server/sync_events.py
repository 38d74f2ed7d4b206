"""Socket.IO events of the sync protocol (stub, to be filled in)."""

from __future__ import annotations

import socketio

from server.room_manager import RoomManager
from server.sync import SyncService


def register(sio: socketio.AsyncServer, manager: RoomManager, sync: SyncService) -> None:
    """Attach ``sync:push`` and ``sync:pull``."""
