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

from sqlalchemy import Index

from server.db.models.base import (
    ACTIVITY_ENSEMBLE,
    ACTIVITY_REPERTOIRE,
    NAMING_CONVENTION,
    SESSION_MODES,
    SOURCE_TYPES,
    Base,
    UTCDateTime,
    new_id,
    utcnow,
)
from server.db.models.logbook import (
    REPERTOIRE_STATUSES,
    ClientMutation,
    Goal,
    PracticeTemplate,
    RepertoireItem,
    UserPreferences,
    UserSync,
)
from server.db.models.pieces import SheetMusic
from server.db.models.progress import StarredPiece, UserAchievement, UserProgress
from server.db.models.sessions import PracticeLog, PracticeSession, SessionRecording
from server.db.models.users import LoginLink, RefreshToken, User

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
