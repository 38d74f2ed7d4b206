"""The room's practice tools hooks: settings before the start, loop passes, wait mode (a mixin
of :class:`rooms.room.Room`; the rules are :mod:`rooms.practice` and :mod:`rooms.wait_mode`)."""

from __future__ import annotations

from rooms.errors import RoomError
from rooms.practice import LoopRun, Pass, Practice, make_practice
from rooms.room_types import MAX_BPM, MIN_BPM
from rooms.wait_mode import WaitScorer


class PracticeHooks:
    """Practice settings and their runs; server/realtime/practice.py runs the passes.

    Expects of the host class (:class:`rooms.room.Room`): the attributes
    ``piece``, ``base_bpm``, ``host``, ``partner``, ``count_in_beats``,
    ``settings``, ``start_at_ms``, ``_players``, ``is_finished`` and the method
    ``players_present``; sets ``practice``, ``tempo_bpm``, ``time_scale``,
    ``loop_run`` and ``waiting``.
    """

    def _set_practice(self, practice: Practice) -> None:
        self.practice = make_practice(
            self.piece,
            tempo_pct=practice.tempo_pct,
            loop=practice.loop,
            ladder=practice.ladder,
            wait=practice.wait,
            base_bpm=self.base_bpm,
            min_bpm=MIN_BPM,
            max_bpm=MAX_BPM,
        )
        self.tempo_bpm = self.base_bpm * self.practice.first_pct / 100.0
        # Room seconds per file second: the room tempo scales the whole tempo map.
        self.time_scale = (self.piece_bpm / self.tempo_bpm) if self.piece_bpm else 1.0

    def set_practice(self, user_id: str, practice: Practice) -> Practice:
        """The host changes the practice settings before the start (``room:tempo``,
        ``room:loop``). Raises ``RoomError`` ``room_finished``, ``not_host``,
        ``already_started``, ``practice_conflict`` (a recorded take's partner) and
        :func:`rooms.practice.make_practice`'s."""
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if user_id != self.host:
            raise RoomError("not_host", "only the host can change the practice settings")
        if self.start_at_ms is not None:
            raise RoomError("already_started", "change the practice settings before the start")
        take = self.partner is not None and self.partner.take is not None
        if take and (practice.looping or practice.wait):
            raise RoomError(
                "practice_conflict", "a recorded take plays neither a loop nor wait mode"
            )
        before = (self.practice, self.tempo_bpm, self.time_scale)
        try:
            self._set_practice(practice)
        except RoomError:
            self.practice, self.tempo_bpm, self.time_scale = before
            raise
        return self.practice

    def pass_due_ms(self) -> float | None:
        """When the current loop pass ends (epoch ms), ``None`` without a running loop."""
        if self.loop_run is None or self.loop_run.done or self.is_finished:
            return None
        return self.loop_run.due_ms()

    def advance_pass(self, now_ms: float) -> Pass | None:
        """The current pass is over: freeze it and plan the next (``None``: the loop is
        done, the room finishes after ``grace_ms``). See :meth:`rooms.practice.LoopRun.advance`."""
        if self.loop_run is None or self.loop_run.done:
            return None
        return self.loop_run.advance(now_ms, self.players_present())

    def _start_loop(self) -> None:
        if self.practice.looping and self.piece is not None and self.start_at_ms is not None:
            self.loop_run = LoopRun(
                self.piece,
                self.practice,
                base_bpm=self.base_bpm,
                count_in_beats=self.count_in_beats,
                scoring=self.settings.scoring,
                start_at_ms=self.start_at_ms,
                parts={u: p.part for u, p in self._players.items() if p.part is not None},
            )

    def _start_wait(self) -> None:
        if self.practice.wait and self.piece is not None and self.start_at_ms is not None:
            partner = self.partner.user_id if self.partner is not None else None
            self.waiting = {
                u: WaitScorer(
                    self.piece.part(p.part).notes,
                    time_scale=self.time_scale,
                    tempo_bpm=self.tempo_bpm,
                )
                for u, p in self._players.items()
                if p.part is not None and u != partner
            }
