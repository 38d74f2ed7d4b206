"""The room's computer partner seat: add, remove and the rules
(a mixin of :class:`rooms.room.Room`)."""

from __future__ import annotations

from typing import Any

from rooms.errors import RoomError
from rooms.room_types import MAX_PLAYERS, Member, PartnerSeat, _Player


class PartnerSeating:
    """Seating the computer partner; server/realtime/partners.py plays it.

    Expects of the host class (:class:`rooms.room.Room`): the attributes
    ``room_id``, ``host``, ``mode``, ``piece``, ``start_at_ms``, ``partner``,
    ``members``, ``_players``, ``is_finished``, ``is_empty`` and the method
    ``_choose_part``.
    """

    def add_partner(
        self,
        user_id: str,
        part: str | None,
        *,
        follow: bool,
        now_ms: int,
        take: dict[str, Any] | None = None,
    ) -> PartnerSeat:
        """The host seats a computer partner on ``part`` (``None``: the first free part).

        It joins as a player member with ``bot: true``; it is never one of the
        session's players (see :meth:`rooms.room.Room.finish`). Raises
        ``RoomError`` with code ``room_finished``, ``not_host``, ``partner_in_free_jam``,
        ``already_started``, ``partner_exists``, ``room_full``, ``unknown_part``,
        ``part_taken`` or ``no_free_part``.
        """
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if user_id != self.host:
            raise RoomError("not_host", "only the host can add a computer partner")
        if self.piece is None:
            raise RoomError(
                "partner_in_free_jam", "a free jam has no parts for a computer partner to play"
            )
        if self.start_at_ms is not None:
            raise RoomError("already_started", "add the partner before the room starts")
        if self.partner is not None:
            raise RoomError(
                "partner_exists",
                f"this room already has a computer partner on {self.partner.part!r}",
            )
        if len(self._players) >= MAX_PLAYERS[self.mode]:
            raise RoomError(
                "room_full", f"a {self.mode} room has at most {MAX_PLAYERS[self.mode]} players"
            )
        chosen = self._choose_part(part)
        assert chosen is not None  # a piece always gives a part
        name = "Computer partner" if take is None else "Recorded take"
        seat = PartnerSeat(f"partner-{self.room_id}", name, chosen, follow, take)
        self.partner = seat
        self._players[seat.user_id] = _Player(
            seat.user_id, seat.display_name, chosen, None, now_ms, scorer=None
        )
        self.members[seat.user_id] = Member(
            seat.user_id, seat.display_name, "player", chosen, None, now_ms, bot=True
        )
        return seat

    def remove_partner(self, user_id: str, now_ms: int) -> PartnerSeat:
        """The host takes the partner out. Before the start its part is freed; after it the
        partner stops and is reported as left. Raises :meth:`check_remove_partner`'s errors."""
        seat = self.check_remove_partner(user_id)
        if self.start_at_ms is None:
            self._drop_partner()
        else:
            del self.members[seat.user_id]
            self._players[seat.user_id].left_at_ms = now_ms
        return seat

    def check_remove_partner(self, user_id: str) -> PartnerSeat:
        """The partner ``user_id`` may remove; raises ``RoomError`` ``room_finished``,
        ``not_host``, ``no_partner``."""
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if user_id != self.host:
            raise RoomError("not_host", "only the host can remove the computer partner")
        seat = self.partner
        if seat is None or seat.user_id not in self.members:
            raise RoomError("no_partner", "this room has no computer partner")
        return seat

    def _drop_partner(self) -> None:
        if self.partner is not None:
            self.members.pop(self.partner.user_id, None)
            self._players.pop(self.partner.user_id, None)
            self.partner = None
