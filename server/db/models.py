"""Database schema (SQLAlchemy 2 declarative), after the practice-logbook design.

Tables, snake_case columns (``0001`` created the first five, ``0002`` the rest;
``0005_privacy_limits`` added ``users.deactivated_at``):

* ``users`` — accounts and guests.
* ``sheet_music`` — uploaded/imported pieces with the original MIDI bytes.
* ``practice_sessions`` — one row per finished room.
* ``practice_logs`` — one row per player per session (the practice logbook).
* ``session_recordings`` — the session's MIDI recording (one track per player).
* ``login_links``, ``refresh_tokens`` — magic-link login and token rotation.
* ``user_sync``, ``client_mutations`` — the sync version and applied mutation ids.
* ``goals``, ``repertoire_items``, ``practice_templates``, ``user_preferences`` —
  the rest of the synced logbook (with ``practice_logs``).

Conventions: ids are strings (new ids are ``uuid4().hex``, 32 characters;
a session id is whatever :class:`rooms.finished.FinishedRoom` carries);
datetimes are timezone-aware UTC (:class:`UTCDateTime`); durations are seconds,
tempi quarter notes per minute (BPM), pitches MIDI note numbers. Constraint
names follow :data:`NAMING_CONVENTION` so that Alembic batch migrations on
SQLite can address them.

The Alembic migration ``server/migrations/versions/0001_initial.py`` must
create exactly this schema; ``tests/e2e/test_persistence.py`` compares them.
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
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
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

SOURCE_TYPES = ("midi_upload", "cli_import", "demo", "generated", "musicxml_upload")
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
    # IANA time zone (e.g. "Pacific/Honolulu") for streaks and daily analytics; None = UTC.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set by DELETE /api/users/me: refused everywhere, purged later (server/services/privacy.py).
    deactivated_at: Mapped[datetime | None] = mapped_column(index=True)

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
    :mod:`rooms.analysis`). ``split_pitch`` is set
    when the piece is the file split into right/left hands at that pitch
    (right hand ≥ ``split_pitch``). ``midi_data`` is deferred: it is only
    loaded when asked for.

    Library metadata (``0003``, see :mod:`server.services.library`): ``key_name`` the
    Krumhansl–Schmuckler key (``"F# minor"``), ``analysis`` the JSON of
    :meth:`rooms.analysis.Analysis.to_json` (features, key, chords per beat),
    ``instrument`` (``"piano"``, ``"strings"``… from the General MIDI program
    or given at import), ``style_period`` (``"baroque"``…, given or from the
    composer), ``grade`` 1–8 (from the difficulty), ``generator`` the request
    of a ``generated`` piece (``{"kind", "difficulty", "key", "parts",
    "measures", "seed"}``).
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
    key_name: Mapped[str | None] = mapped_column(String(16))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    instrument: Mapped[str | None] = mapped_column(String(64), index=True)
    style_period: Mapped[str | None] = mapped_column(String(32), index=True)
    grade: Mapped[int | None] = mapped_column(Integer)
    generator: Mapped[dict[str, Any] | None] = mapped_column(JSON)

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


# --------------------------------------------------------------------------- accounts


class LoginLink(Base):
    """A magic login link sent to ``email``: single use, expires after 10 minutes.

    Only the SHA-256 of the token is stored. ``guest_user_id`` is the guest
    who asked for the link, whose data moves to the account on verification.
    """

    __tablename__ = "login_links"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    guest_user_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class RefreshToken(Base):
    """A refresh token (stored as its SHA-256), one of a rotation family.

    Each use rotates: the row gets ``used_at`` and a new row joins the same
    ``family_id``. Presenting a used token again revokes the whole family
    (``revoked_at`` on every row), as OAuth 2.0 Security BCP §4.14 advises.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


# --------------------------------------------------------------------------- sync


class UserSync(Base):
    """A user's sync version: bumped in the same transaction as every change.

    Taking the next version is an ``UPDATE`` of this row, which holds the
    row's write lock until commit, so a user's changes commit in version
    order and a reader can never see version n+1 before version n.
    """

    __tablename__ = "user_sync"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0)


class ClientMutation(Base):
    """The last mutation id applied from one client (device install) of a user."""

    __tablename__ = "client_mutations"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    last_mutation_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Goal(Base):
    """A practice goal. ``status``: ``active``, ``completed`` or ``abandoned``;
    ``progress`` 0–100 (%); ``target_date`` an ISO date string (YYYY-MM-DD)."""

    __tablename__ = "goals"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    target_date: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default="active")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


REPERTOIRE_STATUSES = (
    "planned",
    "learning",
    "working",
    "polished",
    "performance_ready",
    "archived",
)


class RepertoireItem(Base):
    """A piece in the musician's repertoire and how far along it is (``status``)."""

    __tablename__ = "repertoire_items"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    piece_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("sheet_music.id", ondelete="SET NULL")
    )
    work_title: Mapped[str] = mapped_column(String(300))
    composer: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(24), default="planned")
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PracticeTemplate(Base):
    """A reusable practice plan: activity, instrument, duration (s), focus areas."""

    __tablename__ = "practice_templates"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    activity_type: Mapped[str] = mapped_column(String(32))
    instrument: Mapped[str | None] = mapped_column(String(100))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    focus_areas: Mapped[list[str] | None] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserPreferences(Base):
    """A user's preferences: one JSON object per user, merged key by key."""

    __tablename__ = "user_preferences"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --------------------------------------------------------------------------- progress


class UserProgress(Base):
    """A user's progress summary, recomputed from the live logbook in the same
    transaction as every change of the user's practice logs (see
    :mod:`rooms.progress` for the rules and :mod:`server.services.progress`).

    ``xp`` total experience points, ``level`` from it; ``sessions`` live logs,
    ``duets`` room logs with ≥ 2 players, ``total_seconds`` practice time (s);
    ``last_practice_day`` the latest local practice date (``YYYY-MM-DD`` in the
    user's time zone at the time of the recompute), ``run_days`` the run of
    consecutive practice days ending there, ``longest_streak`` the longest run.
    """

    __tablename__ = "user_progress"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    xp: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=1)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    duets: Mapped[int] = mapped_column(Integer, default=0)
    total_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    pieces: Mapped[int] = mapped_column(Integer, default=0)
    best_piece_accuracy: Mapped[float | None] = mapped_column(Float)
    last_practice_day: Mapped[str | None] = mapped_column(String(10))
    run_days: Mapped[int] = mapped_column(Integer, default=0)
    longest_streak: Mapped[int] = mapped_column(Integer, default=0)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserAchievement(Base):
    """An unlocked achievement (``code`` from :data:`rooms.progress.ACHIEVEMENTS`),
    written once: ``unlocked_at`` is when the server first saw its condition met."""

    __tablename__ = "user_achievements"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    unlocked_at: Mapped[datetime] = mapped_column(default=utcnow)


class StarredPiece(Base):
    """A piece of the library the user starred (``PUT /api/progress/pieces/{id}``)."""

    __tablename__ = "starred_pieces"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    piece_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("sheet_music.id", ondelete="CASCADE"), primary_key=True
    )
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

SYNCED_TABLES = (PracticeLog, Goal, RepertoireItem, PracticeTemplate, UserPreferences)
for _model in SYNCED_TABLES:
    # Pull reads "this user's rows with version > cursor".
    Index(f"ix_{_model.__tablename__}_user_id_version", _model.user_id, _model.version)


__all__ = [
    "ClientMutation",
    "Goal",
    "LoginLink",
    "PracticeTemplate",
    "REPERTOIRE_STATUSES",
    "RefreshToken",
    "RepertoireItem",
    "SYNCED_TABLES",
    "UserPreferences",
    "UserSync",
    "ACTIVITY_ENSEMBLE",
    "ACTIVITY_REPERTOIRE",
    "Base",
    "NAMING_CONVENTION",
    "PracticeLog",
    "PracticeSession",
    "SESSION_MODES",
    "SOURCE_TYPES",
    "SessionRecording",
    "StarredPiece",
    "UserAchievement",
    "UserProgress",
    "SheetMusic",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]
