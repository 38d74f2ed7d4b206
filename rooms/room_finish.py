"""Finishing a room: each player's partial outcome and their merge into the
:class:`rooms.finished.FinishedRoom` (a mixin of :class:`rooms.room.Room`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rooms.errors import RoomError
from rooms.finished import FinishedRoom, PlayerOutcome
from rooms.recording import RecordedEvent, Recording
from rooms.room_types import PlayerPartial, _Player
from rooms.scoring import asynchrony


class RoomFinish:
    """The end of a room, on one process or merged from several (see :mod:`rooms.room`).

    Expects of the host class (:class:`rooms.room.Room`): the attributes
    ``room_id``, ``name``, ``mode``, ``piece``, ``piece_id``, ``tempo_bpm``,
    ``piece_bpm``, ``host``, ``start_at_ms``, ``members``, ``partner``,
    ``recording``, ``loop_run``, ``waiting``, ``finished``, ``_players`` and
    the methods ``_end_ms`` and ``_result``.
    """

    def partials(self, now_ms: int, user_ids: Sequence[str] | None = None) -> list[PlayerPartial]:
        """This replica's final outcome of each player (or of ``user_ids``), in join order.

        A result is ``complete`` when the player was present and the piece had
        reached its end (``now_ms`` ≥ ``start_at`` + end). Raises
        ``RoomError("not_started")`` before the start.
        """
        if self.start_at_ms is None:
            raise RoomError("not_started", "the room has not started yet")
        reached_end = self.piece is None or now_ms >= self.start_at_ms + self._end_ms()
        if self.loop_run is not None and not self.loop_run.done:
            reached_end = False  # passes are still to come
        events: dict[str, list[RecordedEvent]] = {}
        for event in self.recording.events:
            events.setdefault(event.user_id, []).append(event)
        out = []
        for player in self._players.values():
            if user_ids is not None and player.user_id not in user_ids:
                continue
            complete = player.left_at_ms is None and reached_end
            out.append(
                PlayerPartial(
                    user_id=player.user_id,
                    display_name=player.display_name,
                    part=player.part,
                    instrument=player.instrument,
                    joined_at_ms=player.joined_at_ms,
                    left_at_ms=player.left_at_ms,
                    complete=complete,
                    result=self._result(player, final=True, complete=complete),
                    onsets_by_tick=self._onsets(player),
                    events=tuple(events.get(player.user_id, ())),
                )
            )
        return out

    def finish(
        self,
        reason: str,
        now_ms: int,
        session_id: str,
        remote: Sequence[PlayerPartial] = (),
    ) -> FinishedRoom:
        """Close the room and return what is to be saved. Idempotent.

        ``reason``: ``"piece_ended"``, ``"host_ended"``, ``"all_left"`` or
        ``"server_shutdown"``. Completeness as in :meth:`partials`.
        ``remote``: partials scored by other processes; for each player the
        partial (this replica's or a remote one) with the most recorded events
        is used, a remote one on a tie. Raises ``RoomError("not_started")``
        before the start.
        """
        if self.finished is not None:
            return self.finished
        chosen: list[PlayerPartial] = []
        for own in self.partials(now_ms):
            best = own
            for other in remote:
                if other.user_id == own.user_id and len(other.events) >= len(best.events):
                    best = other
            chosen.append(best)
        sync = asynchrony(
            {p.user_id: p.onsets_by_tick for p in chosen if p.onsets_by_tick is not None}
        )
        # A human and the computer partner count as two players for asynchrony.
        room_async = sync["asynchrony_ms"] if len(chosen) >= 2 else None
        outcomes = []
        partner: dict[str, Any] | None = None
        recording = Recording()
        for partial in chosen:
            result = dict(partial.result)
            result["asynchrony_ms"] = (
                sync["by_player"].get(partial.user_id) if room_async is not None else None
            )
            if self.partner is not None and partial.user_id == self.partner.user_id:
                partner = {  # never scored as a session player, nor saved as one
                    "user_id": partial.user_id,
                    "display_name": partial.display_name,
                    "part": partial.part,
                    "follow": self.partner.follow,
                    "take": self.partner.take,
                    "complete": result["complete"],
                    "result": result,
                }
                continue
            outcomes.append(
                PlayerOutcome(
                    user_id=partial.user_id,
                    part=partial.part,
                    instrument=partial.instrument,
                    joined_at_ms=partial.joined_at_ms,
                    left_at_ms=partial.left_at_ms if partial.left_at_ms is not None else now_ms,
                    complete=result["complete"],
                    result=result,
                )
            )
        for event in sorted((e for p in chosen for e in p.events), key=lambda e: (e.seq, e.t_ms)):
            recording.add(event)
        names = {p.user_id: p.display_name + (f" ({p.part})" if p.part else "") for p in chosen}
        self.finished = FinishedRoom(
            session_id=session_id,
            room_id=self.room_id,
            name=self.name,
            mode=self.mode,
            piece_id=self.piece_id,
            piece_title=self.piece.title if self.piece is not None else None,
            tempo_bpm=self.tempo_bpm,
            piece_bpm=self.piece_bpm,
            host_user_id=self.host,
            start_at_ms=self.start_at_ms,
            ended_at_ms=now_ms,
            reason=reason,
            players=tuple(outcomes),
            spectators=tuple(u for u, m in self.members.items() if m.role == "spectator"),
            asynchrony_ms=room_async,
            partner=partner,
            recording_midi=recording.to_midi(
                start_at_ms=self.start_at_ms, tempo_bpm=self.tempo_bpm, track_names=names
            ),
        )
        return self.finished

    def _onsets(self, player: _Player) -> dict[int, list[float]] | None:
        if self.waiting is not None:
            return None  # timing is not judged in wait mode
        if self.loop_run is not None and player.part is not None:
            return self.loop_run.onsets_by_tick(player.user_id)
        return None if player.scorer is None else player.scorer.matched_onsets_by_tick()
