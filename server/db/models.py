"""Database schema (SQLAlchemy 2 declarative), after the practice-logbook design.

Five tables, snake_case columns:

* ``users`` — accounts and guests.
* ``sheet_music`` — uploaded/imported pieces with the original MIDI bytes.
* ``practice_sessions`` — one row per finished room.
* ``practice_logs`` — one row per player per session (the practice logbook).
* ``session_recordings`` — the session's MIDI recording (one track per player).

Conventions: ids are strings (new ids are ``uuid4().hex``, 32 characters;
a session id is whatever :class:`rooms.finished.FinishedRoom` carries);
datetimes are timezone-aware UTC (:class:`UTCDateTime`); durations are seconds,
tempi quarter notes per minute (BPM), pitches MIDI note numbers. Constraint
names follow :data:`NAMING_CONVENTION` so that Alembic batch migrations on
SQLite can address them.

The Alembic migration ``server/migrations/versions/0001_initial.py`` must
create exactly this schema; ``tests/test_persistence.py`` compares them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 64
"""Room for uuid4 hex (32) and any other opaque id up to 64 characters."""

SOURCE_TYPES = ("midi_upload", "cli_import", "demo")
SESSION_MODES = ("duet", "ensemble", "free")
ACTIVITY_ENSEMBLE = "ensemble_reading"
ACTIVITY_REPERTOIRE = "repertoire"


def new_id() -> str:
    """A fresh primary key: ``uuid4().hex`` (32 lowercase hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    On the way in an aware datetime is converted to UTC; a naive one raises
    ``ValueError`` (ambiguous). On the way out a naive value (SQLite stores no
    offset) is marked UTC. PostgreSQL's ``timestamptz`` round-trips natively.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is Alembic's ``target_metadata``."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class User(Base):
    """A user: a registered account (``email`` set) or a guest (``is_guest``)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    is_guest: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, display_name={self.display_name!r})"


class SheetMusic(Base):
    """A piece: metadata derived from the MIDI file, plus the file itself.

    ``parts`` is a JSON list, one entry per playable part::

        {"name": str, "notes": int (note count), "channel": int | None,
         "program": int | None, "lowest_pitch": int | None,
         "highest_pitch": int | None}

    ``tempo_bpm`` is the file's initial tempo, ``duration_seconds`` the length
    at that tempo map. ``difficulty`` is a 1–10 heuristic (see
    :func:`server.db.repository.estimate_difficulty`). ``split_pitch`` is set
    when the piece is the file split into right/left hands at that pitch
    (right hand ≥ ``split_pitch``). ``midi_data`` is deferred: it is only
    loaded when asked for.
    """

    __tablename__ = "sheet_music"
    __table_args__ = (CheckConstraint("difficulty BETWEEN 1 AND 10", name="difficulty_range"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(300))
    composer: Mapped[str | None] = mapped_column(String(300))
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    tempo_bpm: Mapped[float] = mapped_column(Float)
    duration_seconds: Mapped[float] = mapped_column(Float)
    difficulty: Mapped[int] = mapped_column(Integer)
    source_type: Mapped[str] = mapped_column(String(32))
    split_pitch: Mapped[int | None] = mapped_column(Integer)
    ticks_per_beat: Mapped[int] = mapped_column(Integer)
    time_signature: Mapped[str] = mapped_column(String(16))
    midi_data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"SheetMusic(id={self.id!r}, title={self.title!r})"


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
    host_user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"))
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
    """One player's practice in one session: a logbook entry.

    ``activity_type`` is ``"ensemble_reading"`` when the session had at least
    two players, else ``"repertoire"``. ``start_time``/``end_time`` are when
    the player joined/left (or the room ended). ``tempo_practiced`` is the
    player's measured tempo (BPM, ``result["tempo_bpm_played"]``),
    ``tempo_target`` the room tempo (BPM). ``notes_correct`` is
    ``result["notes_matched"]``, ``accuracy_percentage`` is
    ``result["accuracy"] * 100`` (0–100). Scoring columns are ``None`` when
    the result lacks them (free mode). ``result`` is the scorer's final result
    dict, verbatim.
    """

    __tablename__ = "practice_logs"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    session_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("practice_sessions.id", ondelete="CASCADE"), index=True
    )
    piece_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("sheet_music.id", ondelete="SET NULL")
    )
    work_title: Mapped[str | None] = mapped_column(String(300))
    part: Mapped[str | None] = mapped_column(String(100))
    activity_type: Mapped[str] = mapped_column(String(32))
    instrument: Mapped[str | None] = mapped_column(String(100))
    start_time: Mapped[datetime] = mapped_column()
    end_time: Mapped[datetime] = mapped_column()
    duration_seconds: Mapped[float] = mapped_column(Float)
    tempo_practiced: Mapped[float | None] = mapped_column(Float)
    tempo_target: Mapped[float] = mapped_column(Float)
    notes_played: Mapped[int | None] = mapped_column(Integer)
    notes_correct: Mapped[int | None] = mapped_column(Integer)
    accuracy_percentage: Mapped[float | None] = mapped_column(Float)
    complete: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"PracticeLog(session_id={self.session_id!r}, user_id={self.user_id!r})"


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


__all__ = [
    "ACTIVITY_ENSEMBLE",
    "ACTIVITY_REPERTOIRE",
    "Base",
    "NAMING_CONVENTION",
    "PracticeLog",
    "PracticeSession",
    "SESSION_MODES",
    "SOURCE_TYPES",
    "SessionRecording",
    "SheetMusic",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]
