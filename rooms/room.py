"""The room state machine: members, parts, start, note intake, scoring, finish.

A :class:`Room` is pure state: every method takes ``now_ms`` (Unix epoch ms
on the server clock) instead of reading a clock, raises
:class:`rooms.errors.RoomError` and changes nothing when an operation is
refused. The server owns the timers and the sockets.

Phases: ``waiting`` (members join) → ``counting_in`` (started, before
``start_at``) → ``playing`` → ``finished``.

Several processes (issue 4) share one room through a *snapshot*
(:meth:`Room.snapshot`, JSON-ready: settings, host, start, members and
players, no scorers) kept in Redis; each process keeps a replica
(:meth:`Room.from_snapshot`, refreshed with :meth:`Room.apply_snapshot`,
which keeps the replica's scorers and recording) and scores only the
players connected to it. At the end each process hands in
:class:`PlayerPartial` s for its players (:meth:`Room.partials`) and one
process merges them into the :class:`FinishedRoom` (:meth:`Room.finish`
with ``remote``): per player the partial with the most recorded events
wins (a player who moved from a stopped process has its events replayed with
:meth:`Room.absorb`), asynchrony is computed over the chosen partials' matched onsets and the
recording is rebuilt from their events in sequence order. With no remote
partials :meth:`Room.finish` is the single-process finish.

A room may seat one computer partner (:meth:`Room.add_partner`): a player
member with ``bot: true`` that holds a part and is scored, so the room's
asynchrony counts it, but is reported apart (``FinishedRoom.partner``), never
among the session's players; it neither hosts nor keeps a room open.

Practice tools (:mod:`rooms.practice`, :mod:`rooms.wait_mode`) hook in at
:meth:`Room.set_practice` (before the start), :meth:`Room.start` (a
:class:`rooms.practice.LoopRun` of passes, or wait-mode scorers instead of the
player's :class:`rooms.scoring.Scorer`), ``_score`` (where a note is scored),
``_result``, ``_end_ms`` and :meth:`Room.advance_pass` (the end of a loop pass).

The parts live in their own modules, mixed into :class:`Room`: the value
types in :mod:`rooms.room_types`, the partner's seat in
:mod:`rooms.room_partner`, the practice hooks in :mod:`rooms.room_practice`,
the finish in :mod:`rooms.room_finish` and the sharing between processes in
:mod:`rooms.room_sharing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rooms.errors import RoomError
from rooms.finished import FinishedRoom
from rooms.notes import NoteEvent
from rooms.piece import Piece
from rooms.practice import LoopRun, Practice, scaled_scoring
from rooms.recording import RecordedEvent, Recording
from rooms.room_finish import RoomFinish
from rooms.room_partner import PartnerSeating
from rooms.room_practice import PracticeHooks
from rooms.room_sharing import RoomSharing
from rooms.room_types import (
    FREE_TEMPO_BPM,
    MAX_BPM,
    MAX_PLAYERS,
    MIN_BPM,
    MODES,
    ROLES,
    Member,
    PartnerSeat,
    PlayerPartial,
    RoomSettings,
    _Player,
)
from rooms.scoring import Scorer
from rooms.wait_mode import WaitScorer

# The value types are the room's vocabulary: importable from here too.
__all__ = [
    "Member",
    "PartnerSeat",
    "PlayerPartial",
    "Room",
    "RoomSettings",
]


class Room(PartnerSeating, PracticeHooks, RoomFinish, RoomSharing):
    """One practice room. See the module docstring for the rules.

    ``piece`` is ``None`` exactly in ``free`` mode. ``tempo_bpm`` (quarter notes
    per minute, 20–400) replaces the file's tempo and scales its tempo map
    proportionally; ``None`` means the file's initial tempo (120 in free mode).
    ``count_in_beats``: 0–16 beats at the room tempo before ``start_at``.
    ``practice``: slow down, loop, tempo ladder (:mod:`rooms.practice`); the
    room tempo is then ``tempo_pct`` % of that base tempo.
    """

    def __init__(
        self,
        room_id: str,
        *,
        name: str,
        mode: str,
        host_user_id: str,
        piece: Piece | None = None,
        piece_id: str | None = None,
        tempo_bpm: float | None = None,
        count_in_beats: int = 4,
        settings: RoomSettings | None = None,
        created_at_ms: int = 0,
        invite_code: str | None = None,
        practice: Practice | None = None,
    ) -> None:
        if mode not in MODES:
            raise RoomError("invalid_mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "free" and piece is not None:
            raise RoomError(
                "invalid_mode", "a free jam has no reference piece: piece_id must be null"
            )
        if mode != "free" and piece is None:
            raise RoomError("piece_required", f"a {mode} room needs a piece_id")
        if piece is not None and mode == "duet" and len(piece.parts) < 2:
            raise RoomError(
                "not_enough_parts",
                f"a duet needs a piece with at least two parts; {piece.title!r} has "
                f"{len(piece.parts)} (import a piano piece with split_hands=true)",
            )
        if tempo_bpm is not None and not MIN_BPM <= tempo_bpm <= MAX_BPM:
            raise RoomError(
                "invalid_tempo", f"tempo_bpm must be {MIN_BPM:g}-{MAX_BPM:g}, got {tempo_bpm}"
            )
        if not 0 <= count_in_beats <= 16:
            raise RoomError(
                "invalid_count_in", f"count_in_beats must be 0-16, got {count_in_beats}"
            )
        self.room_id = room_id
        self.name = name
        self.mode = mode
        self.piece = piece
        self.piece_id = piece_id
        self.piece_bpm = piece.bpm if piece is not None else None
        # The tempo at 100 % (rooms.practice); the room plays practice.first_pct % of it.
        self.base_bpm = float(
            tempo_bpm if tempo_bpm is not None else (self.piece_bpm or FREE_TEMPO_BPM)
        )
        self.practice = Practice()
        self._set_practice(practice or Practice())
        self.loop_run: LoopRun | None = None
        self.waiting: dict[str, WaitScorer] | None = None  # wait mode's scorers, by player
        self.count_in_beats = count_in_beats
        self.settings = settings or RoomSettings()
        self.host = host_user_id
        self.created_at_ms = created_at_ms
        self.members: dict[str, Member] = {}
        self._players: dict[str, _Player] = {}
        self.start_at_ms: int | None = None
        self.finished: FinishedRoom | None = None
        # Set when another process finished (or is finishing) the room: session id.
        self.closed_session_id: str | None = None
        self.seq = 0
        self.recording = Recording()
        # A private room's invite (rooms.admission); never in state(), only in snapshot().
        self.invite_code = invite_code
        self.partner: PartnerSeat | None = None

    # -- reading -----------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """Whether joining needs the invite code (:mod:`rooms.admission`)."""
        return self.invite_code is not None

    @property
    def part_names(self) -> list[str]:
        return self.piece.part_names if self.piece is not None else []

    @property
    def is_finished(self) -> bool:
        """Finished here, or closed by the process that finishes it."""
        return self.finished is not None or self.closed_session_id is not None

    def phase(self, now_ms: float) -> str:
        if self.is_finished:
            return "finished"
        if self.start_at_ms is None:
            return "waiting"
        return "counting_in" if now_ms < self.start_at_ms else "playing"

    def parts_taken(self) -> dict[str, str]:
        """``{part: user_id}`` of players (present or left mid-piece) holding a part."""
        return {p.part: p.user_id for p in self._players.values() if p.part is not None}

    def players_present(self) -> list[str]:
        """The human players present (the computer partner is not one)."""
        return [u for u, m in self.members.items() if m.role == "player" and not m.bot]

    @property
    def is_empty(self) -> bool:
        """No person is in the room (a computer partner alone does not count)."""
        return not any(not m.bot for m in self.members.values())

    def scorer_of(self, user_id: str) -> Scorer | None:
        """The scorer of player ``user_id`` (``None`` before the start, or without one)."""
        player = self._players.get(user_id)
        return player.scorer if player is not None else None

    def human_ticks(self) -> set[int]:
        """Onset ticks of the parts the human players play (for the partner's shared onsets)."""
        if self.piece is None:
            return set()
        partner = self.partner.user_id if self.partner is not None else None
        return {
            n.onset_tick
            for p in self._players.values()
            if p.part is not None and p.user_id != partner
            for n in self.piece.part(p.part).notes
        }

    def grid_end_ms(self) -> float:
        """End of the piece's last note on the room's grid, ms from ``start_at``."""
        if self.piece is None:
            return 0.0
        return self.piece.duration_s * self.time_scale * 1000.0

    def state(self, now_ms: float) -> dict[str, Any]:
        """The room state sent to clients (JSON-ready)."""
        taken = self.parts_taken()
        return {
            "room_id": self.room_id,
            "name": self.name,
            "mode": self.mode,
            "piece_id": self.piece_id,
            "piece_title": self.piece.title if self.piece is not None else None,
            "tempo_bpm": self.tempo_bpm,
            "tempo_pct": self.practice.first_pct,
            "practice": self.practice_state(),
            "count_in_beats": self.count_in_beats,
            "phase": self.phase(now_ms),
            "host": self.host,
            "start_at": self.start_at_ms,
            "members": [m.to_dict() for m in self.members.values()],
            "parts": [{"name": name, "user_id": taken.get(name)} for name in self.part_names],
            "max_players": MAX_PLAYERS[self.mode],
        }

    def practice_state(self) -> dict[str, Any]:
        """The practice settings (:meth:`rooms.practice.Practice.to_dict`) and ``"passes"``
        (:meth:`rooms.practice.Pass.to_dict` each, ``[]`` before the start or without a loop)."""
        passes = self.loop_run.schedule() if self.loop_run is not None else []
        return {**self.practice.to_dict(), "passes": passes}

    def live_result(self, user_id: str, *, marks: bool = False) -> dict[str, Any] | None:
        """A player's live result, or ``None`` for a non-player.

        ``marks``: add ``"marks"`` (:meth:`rooms.scoring.Scorer.take_marks`: the
        per-note changes since the last such call, which it forgets; ``[]`` in
        a free jam), what a ``score:update`` carries.
        """
        player = self._players.get(user_id)
        if player is None:
            return None
        result = self._result(player, final=False, complete=True)
        if marks:
            result["marks"] = player.scorer.take_marks() if player.scorer is not None else []
        return result

    # -- membership --------------------------------------------------------------

    def join(
        self,
        user_id: str,
        display_name: str,
        *,
        role: str,
        part: str | None,
        instrument: str | None,
        now_ms: int,
    ) -> Member:
        """Add a member. A player who left mid-piece may rejoin the same part.

        Raises ``RoomError`` with code ``room_finished``, ``invalid_role``,
        ``already_joined``, ``already_started``, ``room_full``, ``unknown_part``,
        ``part_taken`` or ``no_free_part``.
        """
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if role not in ROLES:
            raise RoomError("invalid_role", f"role must be 'player' or 'spectator', got {role!r}")
        if user_id in self.members:
            raise RoomError("already_joined", "you are already in this room")
        if role == "spectator":
            member = Member(user_id, display_name, role, None, instrument, now_ms)
            self.members[user_id] = member
            return member
        returning = self._players.get(user_id)
        if returning is not None:  # back after a disconnect: same part, same scorer
            if part is not None and part != returning.part:
                raise RoomError("part_taken", f"you already play {returning.part!r} in this room")
            returning.left_at_ms = None
            member = Member(user_id, display_name, role, returning.part, instrument, now_ms)
            self.members[user_id] = member
            return member
        if self.start_at_ms is not None:
            raise RoomError("already_started", "the piece has started; join as a spectator")
        if len(self._players) >= MAX_PLAYERS[self.mode]:
            raise RoomError(
                "room_full", f"a {self.mode} room has at most {MAX_PLAYERS[self.mode]} players"
            )
        part = self._choose_part(part)
        self._players[user_id] = _Player(
            user_id, display_name, part, instrument, now_ms, scorer=None
        )
        member = Member(user_id, display_name, role, part, instrument, now_ms)
        self.members[user_id] = member
        return member

    def _choose_part(self, part: str | None) -> str | None:
        if self.piece is None:
            if part is not None:
                raise RoomError("unknown_part", "a free jam has no parts: part must be null")
            return None
        taken = self.parts_taken()
        if part is None:
            for name in self.part_names:
                if name not in taken:
                    return name
            raise RoomError("no_free_part", "every part of this piece already has a player")
        if part not in self.part_names:
            raise RoomError(
                "unknown_part",
                f"no part {part!r} in {self.piece.title!r}; parts: {', '.join(self.part_names)}",
            )
        if part in taken:
            raise RoomError("part_taken", f"part {part!r} is already played by someone else")
        return part

    def leave(self, user_id: str, now_ms: int) -> bool:
        """Remove a member; return ``True`` when the room should now finish.

        Before the start a player's part is freed. After the start the
        player's scoring is frozen and their result will be marked incomplete.
        The host role passes to the longest-present member. Raises
        ``RoomError("not_in_room")``.
        """
        member = self.members.pop(user_id, None)
        if member is None:
            raise RoomError("not_in_room", "you are not in this room")
        if member.role == "player":
            if self.start_at_ms is None:
                del self._players[user_id]
            else:
                self._players[user_id].left_at_ms = now_ms
        if self.start_at_ms is None and self.partner is not None and self.is_empty:
            self._drop_partner()  # a partner alone in a room that never started: gone too
        people = [u for u, m in self.members.items() if not m.bot]
        if self.host == user_id and people:
            self.host = people[0]
        return self.start_at_ms is not None and not self.is_finished and not self.players_present()

    def set_rtt(self, user_id: str, rtt_ms: float) -> None:
        """Record a member's round-trip time (ms) as measured by its clock exchanges."""
        member = self.members.get(user_id)
        if member is not None:
            member.rtt_ms = rtt_ms

    # -- playing -----------------------------------------------------------------

    def start(self, user_id: str, now_ms: int) -> int:
        """Start the piece; return ``start_at`` (epoch ms of beat 1, after the count-in).

        Raises ``RoomError`` with code ``not_host``, ``already_started``,
        ``room_finished`` or ``no_players``.
        """
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if user_id != self.host:
            raise RoomError("not_host", "only the host can start the room")
        if self.start_at_ms is not None:
            raise RoomError("already_started", "the room has already started")
        if not self.players_present():
            raise RoomError("no_players", "at least one player must join before the start")
        if self.practice.wait and len(self.players_present()) > 1:
            raise RoomError(
                "wait_mode_solo", "wait mode is for one player (with a computer partner or alone)"
            )
        beat_ms = 60000.0 / self.tempo_bpm
        self.start_at_ms = int(
            now_ms + self.settings.start_delay_ms + self.count_in_beats * beat_ms
        )
        for player in self._players.values():
            player.scorer = self._scorer(player.part)
        self._start_loop()
        self._start_wait()
        return self.start_at_ms

    def _scorer(self, part: str | None) -> Scorer | None:
        if self.piece is None or part is None or self.practice.looping or self.practice.wait:
            return None  # a loop scores each pass on its own (rooms.practice.LoopRun)
        return Scorer(
            self.piece.part(part).notes,
            time_scale=self.time_scale,
            tempo_bpm=self.tempo_bpm,
            settings=scaled_scoring(self.settings.scoring, self.practice.tempo_pct),
        )

    def accept(
        self, user_id: str, events: Sequence[NoteEvent], now_ms: float
    ) -> list[RecordedEvent]:
        """Take a player's note events: score, record, and return them for relay.

        All events are checked before any is applied, so a refused batch
        changes nothing. Raises ``RoomError`` with code ``not_in_room``,
        ``spectator_cannot_play``, ``not_started``, ``room_finished`` or
        ``note_time_out_of_range`` (a timestamp more than ``max_note_skew_ms``
        from ``now_ms``) or ``note_limit`` (past ``max_note_events``).
        """
        member = self.members.get(user_id)
        if member is None:
            raise RoomError("not_in_room", "join the room before sending notes")
        if member.role != "player":
            raise RoomError("spectator_cannot_play", "spectators cannot send notes")
        if self.is_finished:
            raise RoomError("room_finished", "this room has finished")
        if self.start_at_ms is None:
            raise RoomError("not_started", "the room has not started yet")
        if self.seq + len(events) > self.settings.max_note_events:
            raise RoomError(
                "note_limit",
                f"this room has taken its {self.settings.max_note_events} note events",
            )
        skew = self.settings.max_note_skew_ms
        for event in events:
            if abs(event.t_ms - now_ms) > skew:
                raise RoomError(
                    "note_time_out_of_range",
                    f"note stamped {event.t_ms - now_ms:+.0f} ms from the server clock's now; "
                    f"at most ±{skew:.0f} ms is accepted (is the clock synchronised?)",
                )
        player = self._players[user_id]
        out = []
        for event in events:
            self._score(player, event.type, event.pitch, event.t_ms)
            self.seq += 1
            recorded = RecordedEvent(
                self.seq, user_id, player.part, event.type, event.pitch, event.velocity, event.t_ms
            )
            self.recording.add(recorded)
            out.append(recorded)
        return out

    def _score(self, player: _Player, kind: str, pitch: int, t_ms: float) -> None:
        """Score one event: wait mode, the loop's pass, the player's scorer, or a count."""
        waiting = self.waiting.get(player.user_id) if self.waiting is not None else None
        if waiting is not None:
            t = t_ms - (self.start_at_ms or 0)
            if kind == "on":
                waiting.note_on(pitch, t)
            else:
                waiting.note_off(pitch, t)
        elif self.loop_run is not None:
            self.loop_run.note(player.user_id, kind, pitch, t_ms)
            player.notes_played += kind == "on"
        elif player.scorer is not None:
            if kind == "on":
                player.scorer.note_on(pitch, t_ms - (self.start_at_ms or 0))
            else:
                player.scorer.note_off(pitch, t_ms - (self.start_at_ms or 0))
        elif kind == "on":
            player.notes_played += 1

    def finish_due_ms(self) -> float | None:
        """When the piece is over (epoch ms), or ``None`` (not started, or free mode).

        The later of the grid's end and each present player's predicted end
        (by their tracked tempo, at most ``max_drift_ratio`` × the grid's end),
        plus ``grace_ms``.
        """
        if self.start_at_ms is None or self.piece is None:
            return None
        if self.waiting is not None and math.isinf(self._end_ms()):
            return None  # wait mode: the room waits for the player, on no clock
        return self.start_at_ms + self._end_ms() + self.settings.grace_ms

    def _end_ms(self) -> float:
        if self.waiting is not None:
            ends = [w.end_ms() for w in self.waiting.values()]
            return math.inf if None in ends else max((e for e in ends if e is not None), default=0)
        if self.loop_run is not None and self.start_at_ms is not None:
            return self.loop_run.end_ms() - self.start_at_ms
        grid_end = self.grid_end_ms()
        end = grid_end
        for player in self._players.values():
            if player.scorer is not None and player.left_at_ms is None:
                end = max(
                    end,
                    min(player.scorer.predicted_end_ms(), grid_end * self.settings.max_drift_ratio),
                )
        return end

    def _result(self, player: _Player, *, final: bool, complete: bool) -> dict[str, Any]:
        waiting = self.waiting.get(player.user_id) if self.waiting is not None else None
        if waiting is not None:
            result = waiting.result(final=final, complete=complete)
            result["part"] = player.part
            return result
        if self.loop_run is not None and player.part is not None:
            result = self.loop_run.result(player.user_id, final=final, complete=complete)
            result["part"] = player.part
            return result
        if player.scorer is not None:
            result = player.scorer.result(final=final, complete=complete)
        else:  # free mode: nothing to score against
            result = {"notes_played": player.notes_played, "complete": complete}
        result["part"] = player.part
        if player.scorer is not None:
            result["tempo_pct"] = self.practice.tempo_pct
        return result
