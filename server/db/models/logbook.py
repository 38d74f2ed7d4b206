"""The synced logbook beyond practice logs (goals, repertoire, templates, preferences)
and the sync state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models.base import (
    ID_LENGTH,
    Base,
    new_id,
    utcnow,
)


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
