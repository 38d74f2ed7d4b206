"""The declarative base, id and time conventions, and the value lists columns are checked
against."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Dialect,
    MetaData,
)
from sqlalchemy.orm import DeclarativeBase
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

SOURCE_TYPES = (
    "midi_upload",
    "cli_import",
    "demo",
    "generated",
    "musicxml_upload",
    "public_domain",  # the starter library bundled with the server (server/music/starter)
    "transcribed",  # transcribed from an audio upload (server/rest/audio.py)
)
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
