"""Finished rooms: the session row, one practice log per player, the recording."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models.base import (
    ID_LENGTH,
    Base,
    new_id,
    utcnow,
)


class PracticeSession(Base):
    """One finished room.

    ``id`` is :attr:`FinishedRoom.session_id`. ``participants`` is a JSON list
    of ``{"user_id": str, "part": str | None, "role": "player" | "spectator",
    "complete": bool | None}`` (``complete`` is ``None`` for spectators).
    ``tempo_bpm`` is the room tempo; ``asynchrony_ms`` the ensemble's mean
    onset asynchrony in ms (``None`` with fewer than two players).
    ``end_reason``: ``"piece_ended"``, ``"host_ended"`` or ``"all_left"``.
    """

    __tablename__ = "practice_sessions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))
    piece_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("sheet_music.id", ondelete="SET NULL")
    )
    piece_title: Mapped[str | None] = mapped_column(String(300))
    tempo_bpm: Mapped[float] = mapped_column(Float)
    # None once the host's account was purged (server/services/privacy.py).
    host_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"))
    start_time: Mapped[datetime] = mapped_column()
    end_time: Mapped[datetime] = mapped_column()
    duration_seconds: Mapped[float] = mapped_column(Float)
    end_reason: Mapped[str] = mapped_column(String(32))
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    asynchrony_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"PracticeSession(id={self.id!r}, room_id={self.room_id!r})"


class PracticeLog(Base):
    """A logbook entry: one player's practice in one session, or a manual log.

    Rows written by a finished room (``source = "room"``) have a
    ``session_id``; ``activity_type`` is ``"ensemble_reading"`` when the
    session had at least two players, else ``"repertoire"``; ``start_time``/
    ``end_time`` are when the player joined/left (or the room ended);
    ``tempo_practiced`` is the measured tempo (BPM,
    ``result["tempo_bpm_played"]``), ``tempo_target`` the room tempo (BPM);
    ``notes_correct`` is ``result["notes_matched"]`` and
    ``accuracy_percentage`` ``result["accuracy"] * 100`` (0–100); ``result`` is
    the scorer's final result dict, verbatim.

    Manual logs (``source = "manual"`` or ``"quick_log"``, written through the
    sync protocol or the REST API) have no session and no result; they carry
    ``self_rating`` (1–5), ``focus_areas`` (JSON list of str), ``notes``,
    ``mood`` and ``pieces`` (JSON list of ``{"piece_id", "work_title"}``).

    Sync columns (every synced table has them): ``version`` is the owner's
    sync version at the row's last change (see :class:`UserSync`);
    ``deleted_at`` marks a tombstone.
    """

    __tablename__ = "practice_logs"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("practice_sessions.id", ondelete="CASCADE"), index=True
    )
    piece_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("sheet_music.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(16), default="room")
    work_title: Mapped[str | None] = mapped_column(String(300))
    part: Mapped[str | None] = mapped_column(String(100))
    activity_type: Mapped[str] = mapped_column(String(32))
    instrument: Mapped[str | None] = mapped_column(String(100))
    start_time: Mapped[datetime] = mapped_column()
    end_time: Mapped[datetime | None] = mapped_column()
    duration_seconds: Mapped[float] = mapped_column(Float)
    tempo_practiced: Mapped[float | None] = mapped_column(Float)
    tempo_target: Mapped[float | None] = mapped_column(Float)
    notes_played: Mapped[int | None] = mapped_column(Integer)
    notes_correct: Mapped[int | None] = mapped_column(Integer)
    accuracy_percentage: Mapped[float | None] = mapped_column(Float)
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    self_rating: Mapped[int | None] = mapped_column(Integer)
    focus_areas: Mapped[list[str] | None] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text)
    mood: Mapped[str | None] = mapped_column(String(32))
    pieces: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"PracticeLog(id={self.id!r}, user_id={self.user_id!r})"


class SessionRecording(Base):
    """The MIDI recording of a session (Standard MIDI File bytes).

    ``event_count`` is the number of note-on/note-off messages in the file.
    """

    __tablename__ = "session_recordings"

    session_id: Mapped[str] = mapped_column(
        String(ID_LENGTH),
        ForeignKey("practice_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    )
    midi_data: Mapped[bytes] = mapped_column(LargeBinary)
    event_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Progress and analytics read a user's live logs by start time; the index also holds
# what the per-day sums need, so those never touch the (wide) table rows.
Index(
    "ix_practice_logs_live_start",
    PracticeLog.user_id,
    PracticeLog.deleted_at,
    PracticeLog.start_time,
    PracticeLog.activity_type,
    PracticeLog.duration_seconds,
)
# Covers the totals, per-activity/instrument/piece sums and tempo and accuracy trends.
Index(
    "ix_practice_logs_live_stats",
    PracticeLog.user_id,
    PracticeLog.deleted_at,
    PracticeLog.activity_type,
    PracticeLog.instrument,
    PracticeLog.source,
    PracticeLog.piece_id,
    PracticeLog.work_title,
    PracticeLog.start_time,
    PracticeLog.duration_seconds,
    PracticeLog.accuracy_percentage,
    PracticeLog.tempo_practiced,
    PracticeLog.complete,
    PracticeLog.id,
)
