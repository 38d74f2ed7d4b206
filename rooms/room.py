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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rooms.errors import RoomError
from rooms.finished import FinishedRoom, PlayerOutcome
from rooms.notes import NoteEvent
from rooms.piece import Piece
from rooms.practice import LoopRun, Pass, Practice, make_practice, scaled_scoring
from rooms.recording import RecordedEvent, Recording
from rooms.scoring import Scorer, ScoringSettings, asynchrony
from rooms.wait_mode import WaitScorer

MODES = ("duet", "ensemble", "free")
ROLES = ("player", "spectator")
MAX_PLAYERS = {"duet": 2, "ensemble": 8, "free": 8}
MIN_BPM, MAX_BPM = 20.0, 400.0
FREE_TEMPO_BPM = 120.0


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """Timing rules of rooms, all in ms.

    ``start_delay_ms``: time between ``room:start`` and the first count-in
    beat, so every member hears ``room:started`` before the count-in.
    ``grace_ms``: how long after the end of the piece (the later of the grid's
    end and each player's predicted end, see below) the room finishes.
    ``max_note_skew_ms``: how far a note's timestamp may be from the server's
    now. ``max_drift_ratio``: a player predicted to end later than
    ``grid_end * max_drift_ratio`` does not hold the room open longer.
    ``max_spectators``: spectators in one room (:func:`rooms.admission.admit`).
    ``max_note_events``: note events (on and off) one room accepts in all
    (``note_limit`` past it); it bounds the room's note log, which is kept for
    the room's whole life (:mod:`server.realtime.recovery`).
    """

    start_delay_ms: float = 1000.0
    grace_ms: float = 3000.0
    max_note_skew_ms: float = 5000.0
    max_drift_ratio: float = 1.5
    max_spectators: int = 1000
    max_note_events: int = 200_000
    scoring: ScoringSettings = field(default_factory=ScoringSettings)


@dataclass(slots=True)
class Member:
    """A connected member of a room (player or spectator)."""

    user_id: str
    display_name: str
    role: str
    part: str | None
    instrument: str | None
    joined_at_ms: int
    rtt_ms: float | None = None
    bot: bool = False  # the room's computer partner (rooms.following), not a person

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "role": self.role,
            "part": self.part,
            "instrument": self.instrument,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "bot": self.bot,
        }


@dataclass(frozen=True, slots=True)
class PartnerSeat:
    """The room's computer partner: its member id, part, and whether it follows the humans."""

    user_id: str
    display_name: str
    part: str
    follow: bool
    take: dict[str, Any] | None = None  # a recorded take it replays (rooms.takes.Take.to_dict)


@dataclass(frozen=True, slots=True)
class PlayerPartial:
    """One player's final outcome as scored by one process (see the module docstring).

    ``left_at_ms`` is ``None`` while the player is present; ``onsets_by_tick``
    is :meth:`rooms.scoring.Scorer.matched_onsets_by_tick` (``None`` without a
    scorer); ``events`` are the player's recorded events on that process.
    """

    user_id: str
    display_name: str
    part: str | None
    instrument: str | None
    joined_at_ms: int
    left_at_ms: int | None
    complete: bool
    result: dict[str, Any]
    onsets_by_tick: dict[int, list[float]] | None
    events: tuple[RecordedEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "part": self.part,
            "instrument": self.instrument,
            "joined_at_ms": self.joined_at_ms,
            "left_at_ms": self.left_at_ms,
            "complete": self.complete,
            "result": self.result,
            "onsets_by_tick": None
            if self.onsets_by_tick is None
            else {str(k): v for k, v in self.onsets_by_tick.items()},
            "events": [[e.seq, e.type, e.pitch, e.velocity, e.t_ms] for e in self.events],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlayerPartial:
        onsets = d.get("onsets_by_tick")
        return cls(
            user_id=d["user_id"],
            display_name=d["display_name"],
            part=d["part"],
            instrument=d["instrument"],
            joined_at_ms=d["joined_at_ms"],
            left_at_ms=d["left_at_ms"],
            complete=d["complete"],
            result=d["result"],
            onsets_by_tick=None if onsets is None else {int(k): v for k, v in onsets.items()},
            events=tuple(
                RecordedEvent(seq, d["user_id"], d["part"], kind, pitch, velocity, t)
                for seq, kind, pitch, velocity, t in d["events"]
            ),
        )


@dataclass(slots=True)
class _Player:
    """A player's scoring slot; outlives the membership when the player leaves mid-piece."""

    user_id: str
    display_name: str
    part: str | None
    instrument: str | None
    joined_at_ms: int
    scorer: Scorer | None
    notes_played: int = 0  # for free mode, where there is no scorer
    left_at_ms: int | None = None


class Room:
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

    # -- the computer partner (server/realtime/partners.py plays it) -------------

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
        session's players (see :meth:`finish`). Raises ``RoomError`` with code
        ``room_finished``, ``not_host``, ``partner_in_free_jam``,
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

    # -- practice tools (rooms.practice; server/realtime/practice.py runs the passes) --

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

    # -- sharing between processes ------------------------------------------------------

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
    ) -> Room:
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

    def _onsets(self, player: _Player) -> dict[int, list[float]] | None:
        if self.waiting is not None:
            return None  # timing is not judged in wait mode
        if self.loop_run is not None and player.part is not None:
            return self.loop_run.onsets_by_tick(player.user_id)
        return None if player.scorer is None else player.scorer.matched_onsets_by_tick()

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
