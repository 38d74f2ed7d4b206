"""Progress in the database: local days in SQL, the progress summary, achievements.

The rules are in :mod:`rooms.progress`; this module runs them against a
user's live practice logs (``deleted_at IS NULL``).

**Local days in SQL.** Streaks and daily analytics need each log's calendar
day in the user's IANA time zone, daylight saving time included, for tens of
thousands of logs. The zone's UTC offsets over the logs' time span are taken
from :mod:`zoneinfo` (a change of offset is found to the second by
bisection), and the database computes ``local epoch = epoch + CASE WHEN
epoch < t₁ THEN o₀ WHEN epoch < t₂ THEN o₁ … END`` and groups by
``local epoch DIV 86400``: exact, and no row leaves the database. Works on
SQLite (``strftime('%s', …)``) and PostgreSQL (``EXTRACT(EPOCH FROM …)``).

**When progress changes.** :func:`refresh_progress` recomputes the user's
:class:`~server.db.models.UserProgress` row and unlocks new achievements, in
the caller's transaction: a finished room's save
(:func:`server.db.finished_rooms.save_finished_room`, per player) and every
write of practice logs through sync or REST (:class:`server.services.sync.SyncService`)
call it before they commit, so progress and logbook never disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms import progress as rules
from rooms.errors import RoomError
from server.db.models import (
    ACTIVITY_ENSEMBLE,
    PracticeLog,
    StarredPiece,
    User,
    UserAchievement,
    UserProgress,
    utcnow,
)

EPOCH_DAY = date(1970, 1, 1)
DAY_S = 86_400


# --------------------------------------------------------------------------- time zones


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (``None``/empty: UTC); ``RoomError("invalid_time_zone")``
    for a name zoneinfo does not know."""
    if not name:
        return ZoneInfo("UTC")
    if not isinstance(name, str) or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise RoomError("invalid_time_zone", f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RoomError(
            "invalid_time_zone", f"unknown time zone {name!r} (use an IANA name, e.g. Europe/Paris)"
        ) from None


async def user_zone_name(db: AsyncSession, user_id: str) -> str:
    """The user's stored time zone name (``"UTC"`` when not set)."""
    return await db.scalar(select(User.time_zone).where(User.id == user_id)) or "UTC"


def today_in(tz: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(tz).date()


def _offset(tz: ZoneInfo, epoch: int) -> int:
    return int(datetime.fromtimestamp(epoch, tz).utcoffset().total_seconds())


def offset_segments(tz: ZoneInfo, lo: int, hi: int) -> list[tuple[int | None, int]]:
    """The zone's UTC offsets (s) over epoch seconds ``[lo, hi]``: ``[(until, offset), …]``,
    the last with ``until = None``. Offsets change at most a few times a year, so
    a daily scan plus a bisection per change finds every change to the second."""
    segments: list[tuple[int | None, int]] = []
    t, current = lo, _offset(tz, lo)
    while t < hi:
        nt = min(t + DAY_S, hi)
        after = _offset(tz, nt)
        if after != current:
            a, b = t, nt  # offset(a) == current, offset(b) != current
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(tz, mid) == current:
                    a = mid
                else:
                    b = mid
            segments.append((b, current))
            current = _offset(tz, b)
            t = b
            continue
        t = nt
    segments.append((None, current))
    return segments


def epoch_seconds(db: AsyncSession, column: Any) -> ColumnElement[int]:
    """Whole Unix epoch seconds of a UTC datetime column, in SQL."""
    if db.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def local_epoch(db: AsyncSession, column: Any, tz: ZoneInfo, lo: int, hi: int) -> ColumnElement:
    """``column`` as seconds since 1970-01-01T00:00 *local* time in ``tz`` (SQL)."""
    epoch = epoch_seconds(db, column)
    segments = offset_segments(tz, lo, hi)
    if len(segments) == 1:
        return epoch + segments[0][1]
    # Compare the column itself (an indexable, cheap comparison) so that the epoch
    # is computed once per row, in the branch taken.
    whens = [
        (column < datetime.fromtimestamp(until, UTC), epoch + off) for until, off in segments[:-1]
    ]
    return case(*whens, else_=epoch + segments[-1][1])


def local_day(db: AsyncSession, column: Any, tz: ZoneInfo, lo: int, hi: int) -> ColumnElement:
    """The local calendar day of ``column`` in ``tz``, as days since 1970-01-01 (SQL)."""
    # Integer division of integers truncates on SQLite and PostgreSQL; epochs here are ≥ 0.
    return local_epoch(db, column, tz, lo, hi) // DAY_S


def day_number(day: date) -> int:
    return (day - EPOCH_DAY).days


def day_of(number: int) -> date:
    return EPOCH_DAY + timedelta(days=int(number))


def utc_epoch(value: datetime) -> int:
    return int(value.timestamp())


# --------------------------------------------------------------------------- logs


def live_logs(user_id: str) -> list[ColumnElement[bool]]:
    """WHERE clauses: the user's live (not deleted) logs."""
    return [PracticeLog.user_id == user_id, PracticeLog.deleted_at.is_(None)]


def piece_key() -> ColumnElement[str]:
    """A log's piece: its library ``piece_id``, else ``"title:"`` + lower-cased
    ``work_title`` (``NULL`` when it names neither)."""
    return func.coalesce(PracticeLog.piece_id, "title:" + func.lower(PracticeLog.work_title))


def xp_expression() -> ColumnElement[float]:
    """Per-log XP of :func:`rooms.progress.log_xp`, in SQL (summed by callers)."""
    cap = rules.XP_MINUTES_CAP * 60
    d = PracticeLog.duration_seconds
    minutes = case((d > cap, cap), (d < 0, 0), else_=d) / 60.0
    bonus = case(
        (
            PracticeLog.source == "room",
            rules.XP_ROOM_BONUS + func.coalesce(PracticeLog.accuracy_percentage, 0.0) / 10.0,
        ),
        else_=0.0,
    )
    return minutes + bonus


def completed_room_accuracy() -> ColumnElement[float]:
    """A log's accuracy (%) when it is a complete room play of a piece, else NULL."""
    return case(
        (
            and_(
                PracticeLog.source == "room",
                PracticeLog.complete.is_(True),
                PracticeLog.piece_id.is_not(None),
            ),
            PracticeLog.accuracy_percentage,
        ),
        else_=None,
    )


async def time_span(db: AsyncSession, where: list[Any]) -> tuple[int, int] | None:
    """Epoch seconds of the first and last log start matching ``where`` (or ``None``)."""
    lo, hi = (
        await db.execute(
            select(func.min(PracticeLog.start_time), func.max(PracticeLog.start_time)).where(*where)
        )
    ).one()
    if lo is None:
        return None
    lo, hi = _aware(lo), _aware(hi)
    return utc_epoch(lo) - DAY_S, utc_epoch(hi) + DAY_S


def _aware(value: Any) -> datetime:
    # Aggregates bypass the column type: SQLite hands back the stored string.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def practice_days(db: AsyncSession, user_id: str, tz: ZoneInfo) -> list[date]:
    """The distinct local days (in ``tz``) on which the user's live logs started."""
    where = live_logs(user_id)
    span = await time_span(db, where)
    if span is None:
        return []
    day = local_day(db, PracticeLog.start_time, tz, *span)
    numbers = (await db.scalars(select(day).where(*where).distinct())).all()
    return [day_of(n) for n in numbers]


# --------------------------------------------------------------------------- refresh


async def log_totals(db: AsyncSession, where: list[Any]) -> dict[str, Any]:
    """Totals of the logs matching ``where``: ``sessions``, ``duets``, ``total_seconds``,
    ``xp`` (unrounded), ``pieces``, ``best_piece_accuracy`` (%), ``room_sessions``,
    ``mean_accuracy`` (% over room logs)."""
    row = (
        await db.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(
                        case(
                            (
                                and_(
                                    PracticeLog.source == "room",
                                    PracticeLog.activity_type == ACTIVITY_ENSEMBLE,
                                ),
                                1,
                            ),
                            else_=0,
                        )
                    ),
                    0,
                ),
                func.coalesce(func.sum(PracticeLog.duration_seconds), 0.0),
                func.coalesce(func.sum(xp_expression()), 0.0),
                func.count(func.distinct(piece_key())),
                func.max(completed_room_accuracy()),
                func.coalesce(func.sum(case((PracticeLog.source == "room", 1), else_=0)), 0),
                func.avg(PracticeLog.accuracy_percentage),
            ).where(*where)
        )
    ).one()
    return {
        "sessions": int(row[0]),
        "duets": int(row[1]),
        "total_seconds": float(row[2]),
        "xp": float(row[3]),
        "pieces": int(row[4]),
        "best_piece_accuracy": row[5],
        "room_sessions": int(row[6]),
        "mean_accuracy": row[7],
    }


async def refresh_progress(
    db: AsyncSession, user_id: str, *, now: datetime | None = None
) -> UserProgress:
    """Recompute the user's progress summary from the live logbook and unlock every
    achievement whose condition is now met (idempotent: an unlocked one is never
    written again). Runs in the caller's transaction; returns the summary row."""
    now = now or utcnow()
    zone_name = await user_zone_name(db, user_id)
    totals = await log_totals(db, live_logs(user_id))
    longest, run, last = rules.runs(await practice_days(db, user_id, zone(zone_name)))
    info = rules.level_info(totals["xp"])
    row = await db.get(UserProgress, user_id)
    if row is None:
        row = UserProgress(user_id=user_id)
        db.add(row)
    row.xp = info["xp"]
    row.level = info["level"]
    row.sessions = totals["sessions"]
    row.duets = totals["duets"]
    row.total_seconds = totals["total_seconds"]
    row.pieces = totals["pieces"]
    row.best_piece_accuracy = totals["best_piece_accuracy"]
    row.last_practice_day = last.isoformat() if last else None
    row.run_days = run
    row.longest_streak = longest
    row.time_zone = zone_name
    row.updated_at = now
    stats = rules.Stats(
        sessions=row.sessions,
        duets=row.duets,
        total_seconds=row.total_seconds,
        longest_streak=longest,
        best_piece_accuracy=row.best_piece_accuracy,
        pieces=row.pieces,
        level=row.level,
    )
    have = set(
        (
            await db.scalars(select(UserAchievement.code).where(UserAchievement.user_id == user_id))
        ).all()
    )
    for code in rules.unlocked(stats):
        if code not in have:
            db.add(UserAchievement(user_id=user_id, code=code, unlocked_at=now))
    await db.flush()
    return row


async def progress_row(db: AsyncSession, user_id: str) -> UserProgress:
    """The user's summary; recomputed (and committed by the caller) when missing or
    computed in another time zone than the user's current one."""
    row = await db.get(UserProgress, user_id)
    if row is None or row.time_zone != await user_zone_name(db, user_id):
        row = await refresh_progress(db, user_id)
    return row


async def merge_progress(db: AsyncSession, guest_id: str, account_id: str) -> None:
    """A guest merging into an account (:func:`server.services.guest_merge.merge_guest`): the
    account keeps the earliest unlock of each achievement and gains the guest's
    stars and, when it has none, the guest's time zone; its summary is recomputed."""
    guest_codes = {
        a.code: a
        for a in (
            await db.scalars(select(UserAchievement).where(UserAchievement.user_id == guest_id))
        ).all()
    }
    for code, achievement in guest_codes.items():
        mine = await db.get(UserAchievement, (account_id, code))
        if mine is None:
            db.add(
                UserAchievement(user_id=account_id, code=code, unlocked_at=achievement.unlocked_at)
            )
        elif achievement.unlocked_at < mine.unlocked_at:
            mine.unlocked_at = achievement.unlocked_at
        await db.delete(achievement)
    for star in (
        await db.scalars(select(StarredPiece).where(StarredPiece.user_id == guest_id))
    ).all():
        if await db.get(StarredPiece, (account_id, star.piece_id)) is None:
            db.add(
                StarredPiece(user_id=account_id, piece_id=star.piece_id, created_at=star.created_at)
            )
        await db.delete(star)
    guest_progress = await db.get(UserProgress, guest_id)
    if guest_progress is not None:
        await db.delete(guest_progress)
    guest, account = await db.get(User, guest_id), await db.get(User, account_id)
    if guest is not None and account is not None and not account.time_zone and guest.time_zone:
        account.time_zone = guest.time_zone
    await db.flush()
    await refresh_progress(db, account_id)
