"""The value types of a room: its settings and limits, members, the computer partner's seat,
a player's scoring slot and the partial outcome one process hands in (:mod:`rooms.room`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rooms.recording import RecordedEvent
from rooms.scoring import Scorer
from rooms.scoring_settings import ScoringSettings

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
