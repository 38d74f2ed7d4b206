"""Sharing a room between processes: snapshot, replica, and replaying a player's events
(a mixin of :class:`rooms.room.Room`; the protocol is in :mod:`rooms.room`'s docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from rooms.piece import Piece
from rooms.practice import Practice
from rooms.recording import RecordedEvent
from rooms.room_types import Member, PartnerSeat, PlayerPartial, RoomSettings, _Player


class RoomSharing:
    """A room's snapshot (kept in Redis by server/realtime/sharing.py) and its replicas.

    Expects of the host class (:class:`rooms.room.Room`): its constructor's
    keywords (for :meth:`from_snapshot`), the attributes of the snapshot
    (``room_id``, ``name``, ``mode``, ``piece_id``, ``tempo_bpm``,
    ``base_bpm``, ``practice``, ``loop_run``, ``waiting``, ``count_in_beats``,
    ``host``, ``created_at_ms``, ``invite_code``, ``partner``,
    ``start_at_ms``, ``closed_session_id``, ``finished``, ``members``,
    ``_players``, ``recording``) and the methods ``_score``, ``_scorer``,
    ``_set_practice``, ``_start_loop`` and ``_start_wait``.
    """

    def absorb(self, partial: PlayerPartial) -> int:
        """Replay another process's recorded events of a player into this replica.

        Used when a player moves here from a process that stopped: the events
        are scored and recorded again, in their order, so the player's scorer
        ends up as it was there. Events already recorded here (same ``seq``)
        are skipped. Returns how many events were replayed.
        """
        player = self._players.get(partial.user_id)
        if player is None or self.start_at_ms is None:
            return 0
        known = {e.seq for e in self.recording.events}
        replayed = 0
        for event in sorted(partial.events, key=lambda e: e.seq):
            if event.seq in known:
                continue
            self._score(player, event.type, event.pitch, event.t_ms)
            self.recording.add(event)
            replayed += 1
        return replayed

    def rebuild(self, user_id: str, log: Sequence[RecordedEvent]) -> int:
        """Score a player again from the room's note log (``log``: any events; the
        player's are taken) merged with this replica's, in ``seq`` order.

        How a process that takes a room over from one that died gets the
        player's exact counts: a fresh scorer is fed every known note event
        of the player, so the result is the one of scoring them in one go.
        Returns how many events were new to this replica (0: nothing changed).
        """
        player = self._players.get(user_id)
        if player is None or self.start_at_ms is None:
            return 0
        own = [e for e in self.recording.events if e.user_id == user_id]
        known = {e.seq for e in own}
        new: dict[int, RecordedEvent] = {}
        for e in log:
            if e.user_id == user_id and e.seq not in known:
                new[e.seq] = e
        if not new:
            return 0
        listener = player.scorer.on_match if player.scorer is not None else None
        player.scorer = self._scorer(player.part)
        player.notes_played = 0
        for event in sorted([*own, *new.values()], key=lambda e: e.seq):
            if player.scorer is not None:
                if event.type == "on":
                    player.scorer.note_on(event.pitch, event.t_ms - self.start_at_ms)
                else:
                    player.scorer.note_off(event.pitch, event.t_ms - self.start_at_ms)
            elif event.type == "on":
                player.notes_played += 1
        if player.scorer is not None:
            player.scorer.on_match = listener
        for event in sorted(new.values(), key=lambda e: e.seq):
            self.recording.add(event)
        return len(new)

    def snapshot(self) -> dict[str, Any]:
        """The shared part of the room (no scorers, no notes) as JSON-ready data."""
        return {
            "room_id": self.room_id,
            "name": self.name,
            "mode": self.mode,
            "piece_id": self.piece_id,
            "tempo_bpm": self.tempo_bpm,
            "base_bpm": self.base_bpm,
            "practice": self.practice.to_dict(),
            "passes": None if self.loop_run is None else self.loop_run.schedule(),
            "loop_done": self.loop_run is not None and self.loop_run.done,
            "count_in_beats": self.count_in_beats,
            "host": self.host,
            "created_at_ms": self.created_at_ms,
            "invite_code": self.invite_code,
            "partner": None
            if self.partner is None
            else [
                self.partner.user_id,
                self.partner.display_name,
                self.partner.part,
                self.partner.follow,
                self.partner.take,
            ],
            "start_at_ms": self.start_at_ms,
            "closed_session_id": self.closed_session_id
            or (self.finished.session_id if self.finished is not None else None),
            "members": [
                [m.user_id, m.display_name, m.role, m.part, m.instrument, m.joined_at_ms, m.rtt_ms]
                for m in self.members.values()
            ],
            "players": [
                [p.user_id, p.display_name, p.part, p.instrument, p.joined_at_ms, p.left_at_ms]
                for p in self._players.values()
            ],
        }

    @classmethod
    def from_snapshot(
        cls, snap: dict[str, Any], piece: Piece | None, settings: RoomSettings | None = None
    ) -> Self:
        """A replica of a room from its :meth:`snapshot` and its piece."""
        room = cls(
            snap["room_id"],
            name=snap["name"],
            mode=snap["mode"],
            host_user_id=snap["host"],
            piece=piece,
            piece_id=snap["piece_id"],
            tempo_bpm=snap.get("base_bpm", snap["tempo_bpm"]),
            count_in_beats=snap["count_in_beats"],
            settings=settings,
            created_at_ms=snap["created_at_ms"],
            invite_code=snap.get("invite_code"),
            practice=Practice.from_dict(snap.get("practice")),
        )
        room.apply_snapshot(snap)
        return room

    def apply_snapshot(self, snap: dict[str, Any]) -> None:
        """Take the host, start, members and players of ``snap``; keep scorers and notes."""
        self.host = snap["host"]
        if self.start_at_ms is None and snap.get("practice"):
            self._set_practice(Practice.from_dict(snap["practice"]))
        if self.start_at_ms is None and snap["start_at_ms"] is not None:
            self.start_at_ms = snap["start_at_ms"]
            for player in self._players.values():
                player.scorer = self._scorer(player.part)
        if snap.get("closed_session_id") and self.finished is None:
            self.closed_session_id = snap["closed_session_id"]
        players: dict[str, _Player] = {}
        for user_id, name, part, instrument, joined, left in snap["players"]:
            player = self._players.get(user_id)
            if player is None or player.part != part:
                scorer = self._scorer(part) if self.start_at_ms is not None else None
                player = _Player(user_id, name, part, instrument, joined, scorer=scorer)
            player.left_at_ms = left
            players[user_id] = player
        self._players = players
        if self.loop_run is None and self.start_at_ms is not None:
            self._start_loop()
        if self.waiting is None and self.start_at_ms is not None:
            self._start_wait()
        if self.loop_run is not None and snap.get("passes"):
            self.loop_run.restore(snap["passes"], snap.get("loop_done", False))
        seat = snap.get("partner")
        self.partner = PartnerSeat(*seat) if seat else None
        bot = self.partner.user_id if self.partner is not None else None
        self.members = {
            m[0]: Member(m[0], m[1], m[2], m[3], m[4], m[5], m[6], bot=m[0] == bot)
            for m in snap["members"]
        }
