"""The piece library's database side: filtered lists, random picks, the user's
history for recommendations, and the analysis backfill.

Filters (all optional, combined with AND): ``instrument`` (case-insensitive,
e.g. ``piano``), ``difficulty_min``/``difficulty_max`` (1–10, inclusive),
``style_period`` (one of :data:`rooms.catalogue.STYLE_PERIODS`), ``grade``
(1–8), ``key`` (``"G major"``), ``source_type``.
"""

from __future__ import annotations

import logging
import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from rooms.analysis import ANALYSIS_VERSION
from rooms.recommend import Played
from server.db import repository
from server.db.models import SOURCE_TYPES, PracticeLog, SheetMusic
from server.services.pieces import piece_from_midi

log = logging.getLogger(__name__)

StylePeriod = Literal[
    "medieval", "renaissance", "baroque", "classical", "romantic", "modern", "contemporary"
]
SourceType = Literal[SOURCE_TYPES]  # type: ignore[valid-type]


class _Query(BaseModel):
    # Query strings are text: lax mode turns "4" into 4; unknown parameters are refused.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PieceFilters(_Query):
    """The filters of ``GET /api/pieces`` and ``/api/pieces/random``."""

    instrument: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    difficulty_min: int = Field(default=1, ge=1, le=10)
    difficulty_max: int = Field(default=10, ge=1, le=10)
    style_period: StylePeriod | None = None
    grade: int | None = Field(default=None, ge=1, le=8)
    key: Annotated[str, Field(min_length=7, max_length=16)] | None = None
    source_type: SourceType | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PieceFilters:
        if self.difficulty_min > self.difficulty_max:
            raise ValueError(
                f"difficulty_min ({self.difficulty_min}) is above difficulty_max "
                f"({self.difficulty_max})"
            )
        return self


class ListQuery(PieceFilters):
    """``GET /api/pieces``: the filters plus ``limit`` (1–500) and ``offset``."""

    limit: int | None = Field(default=None, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class RandomQuery(PieceFilters):
    """``GET /api/pieces/random``: the filters plus an optional ``seed``."""

    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class RecommendQuery(_Query):
    """``GET /api/pieces/recommended``: ``limit`` 1–50 (default 5), ``instrument``."""

    limit: int = Field(default=5, ge=1, le=50)
    instrument: Annotated[str, Field(min_length=1, max_length=64)] | None = None


def _where(filters: PieceFilters) -> list:
    where = [
        SheetMusic.difficulty >= filters.difficulty_min,
        SheetMusic.difficulty <= filters.difficulty_max,
    ]
    if filters.instrument is not None:
        where.append(func.lower(SheetMusic.instrument) == filters.instrument.strip().lower())
    if filters.style_period is not None:
        where.append(SheetMusic.style_period == filters.style_period)
    if filters.grade is not None:
        where.append(SheetMusic.grade == filters.grade)
    if filters.key is not None:
        where.append(func.lower(SheetMusic.key_name) == filters.key.strip().lower())
    if filters.source_type is not None:
        where.append(SheetMusic.source_type == filters.source_type)
    return where


def _listing():
    return select(SheetMusic).options(defer(SheetMusic.midi_data, raiseload=True))


async def list_pieces(db: AsyncSession, query: ListQuery) -> tuple[list[SheetMusic], int]:
    """Matching pieces, oldest first, and how many match in all."""
    where = _where(query)
    total = await db.scalar(select(func.count()).select_from(SheetMusic).where(*where))
    stmt = (
        _listing().where(*where).order_by(SheetMusic.created_at, SheetMusic.id).offset(query.offset)
    )
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return list((await db.scalars(stmt)).all()), int(total or 0)


async def random_piece(db: AsyncSession, query: RandomQuery) -> SheetMusic | None:
    """One matching piece drawn uniformly; with ``seed`` the same library gives the same draw."""
    ids = sorted((await db.scalars(select(SheetMusic.id).where(*_where(query)))).all())
    if not ids:
        return None
    rng = random.Random(query.seed) if query.seed is not None else random.SystemRandom()
    chosen = rng.choice(ids)
    return (await db.scalars(_listing().where(SheetMusic.id == chosen))).one()


async def history(db: AsyncSession, user_id: str) -> list[Played]:
    """The user's practised pieces: best accuracy (%) and last practice, from live logs."""
    stmt = (
        select(
            PracticeLog.piece_id,
            SheetMusic.difficulty,
            func.max(PracticeLog.accuracy_percentage),
            func.max(PracticeLog.start_time),
        )
        .join(SheetMusic, SheetMusic.id == PracticeLog.piece_id)
        .where(PracticeLog.user_id == user_id, PracticeLog.deleted_at.is_(None))
        .group_by(PracticeLog.piece_id, SheetMusic.difficulty)
    )
    played = []
    for piece_id, difficulty, best, last in (await db.execute(stmt)).all():
        played.append(Played(piece_id, difficulty, best, last))
    return played


async def candidates(db: AsyncSession, instrument: str | None) -> list[tuple[str, int]]:
    """``(piece_id, difficulty)`` of every piece (of ``instrument`` when given)."""
    stmt = select(SheetMusic.id, SheetMusic.difficulty)
    if instrument is not None:
        stmt = stmt.where(func.lower(SheetMusic.instrument) == instrument.strip().lower())
    return [(pid, d) for pid, d in (await db.execute(stmt)).all()]


async def backfill(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Analyse every piece stored without a current analysis; return how many.

    Pieces from before migration ``0003`` (``analysis`` NULL) and pieces
    analysed by an older :data:`rooms.analysis.ANALYSIS_VERSION` get their
    difficulty, key, analysis, grade, instrument and style period (the last
    two only when unset). A stored file that no longer loads is logged and
    marked ``{"version", "error"}`` so it is not retried at every start.
    """
    version = SheetMusic.analysis["version"].as_integer()
    async with sessionmaker() as db:
        stale = (
            await db.scalars(
                select(SheetMusic.id).where(
                    or_(
                        SheetMusic.analysis.is_(None),
                        version.is_(None),
                        version != ANALYSIS_VERSION,
                    )
                )
            )
        ).all()
    for piece_id in stale:
        async with sessionmaker.begin() as db:
            row = await repository.get_piece(db, piece_id)
            if row is None:
                continue
            try:
                piece = piece_from_midi(row.midi_data, title=row.title, split_pitch=row.split_pitch)
                meta = repository.library_metadata(
                    piece,
                    composer=row.composer,
                    instrument=row.instrument,
                    style_period=row.style_period,
                )
            except ValueError as exc:
                log.warning("piece %s cannot be analysed: %s", piece_id, exc)
                row.analysis = {"version": ANALYSIS_VERSION, "error": str(exc)}
                continue
            for column, value in meta.items():
                setattr(row, column, value)
    if stale:
        log.info("analysed %d piece(s) stored without a current analysis", len(stale))
    return len(stale)
