"""Progress: XP and levels, achievements, starred pieces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models.base import (
    ID_LENGTH,
    Base,
    utcnow,
)


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
