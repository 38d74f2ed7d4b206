"""What a finished room hands to persistence: plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PlayerOutcome:
    """One player's part in a finished room.

    ``result`` is the scorer's final result dict exactly as sent in
    ``room:finished`` (see :meth:`rooms.scoring.Scorer.result`); it is stored
    verbatim as JSON in the practice log.
    """

    user_id: str
    part: str | None
    instrument: str | None
    joined_at_ms: int
    left_at_ms: int
    complete: bool
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FinishedRoom:
    """A room that reached phase ``finished``.

    Times are Unix epoch milliseconds on the server clock. ``reason`` is one of
    ``"piece_ended"``, ``"host_ended"``, ``"all_left"``. ``tempo_bpm`` is the
    room tempo in quarter notes per minute; ``piece_bpm`` the file's initial
    tempo (``None`` in free mode). ``recording_midi`` is a Standard MIDI File
    (type 1, one track per player) as bytes.
    """

    session_id: str
    room_id: str
    name: str
    mode: str
    piece_id: str | None
    piece_title: str | None
    tempo_bpm: float
    piece_bpm: float | None
    host_user_id: str
    start_at_ms: int
    ended_at_ms: int
    reason: str
    players: tuple[PlayerOutcome, ...]
    spectators: tuple[str, ...] = ()
    asynchrony_ms: float | None = None
    # The computer partner, reported apart from the players: {"user_id", "display_name",
    # "part", "follow", "take", "complete", "result"} (rooms.room.Room.finish), or None.
    partner: dict[str, Any] | None = None
    recording_midi: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)
