"""This process's Socket.IO connections: :class:`Connection` and their registry."""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.errors import RoomError


@dataclass(slots=True)
class Connection:
    """One authenticated Socket.IO connection (one device of one user).

    ``rtt_ms``: the round-trip time the client last reported (ms), ``None``
    before its first clock exchange. ``rooms``: ids of the rooms it is in.
    """

    sid: str
    user_id: str
    display_name: str
    device_id: str
    device_name: str
    rtt_ms: float | None = None
    rooms: set[str] = field(default_factory=set)


class Connections(dict[str, Connection]):
    """sid → :class:`Connection`, for every connection that passed ``connect``."""

    def require(self, sid: str) -> Connection:
        """The connection ``sid``; raises ``RoomError`` ``not_connected``."""
        connection = self.get(sid)
        if connection is None:
            raise RoomError("not_connected", "this connection is not authenticated")
        return connection

    def count(self, user_id: str) -> int:
        """How many connections ``user_id`` has on this process."""
        return sum(1 for c in self.values() if c.user_id == user_id)
