"""Aggregate queries over a user's live practice logs, for progress and analytics.

Every query is one SQL statement grouped in the database (no per-log rows
come back except for the export), filtered on the index
``ix_practice_logs_user_id_start_time``. Local days and hours use
:func:`server.services.progress.local_epoch` (the user's IANA time zone, DST
exact). Durations are seconds, accuracies percent (0–100), tempi BPM
(quarter notes per minute), timing deviations milliseconds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from rooms import progress as rules
from server.db.models import PracticeLog, SheetMusic, StarredPiece
from server.services.progress import (
    DAY_S,
    day_of,
    live_logs,
    local_day,
    local_epoch,
    piece_key,
    time_span,
    xp_expression,
)


@dataclass(frozen=True)
class Window:
    """A range of local dates ``[start, end]`` (inclusive) in ``tz``; either may be open."""

    tz: ZoneInfo
    start: date | None = None
    end: date | None = None

    def where(self, user_id: str, *, db: AsyncSession | None = None) -> list[Any]:
        """WHERE clauses of the user's live logs started in the window. With ``db`` on
        SQLite the range is written so that it cannot pick the start-time index: the
        grouped queries then scan the covering stats index instead of fetching every
        table row through the start-time one (about three times faster for years)."""
        clauses = live_logs(user_id)
        start_time: Any = PracticeLog.start_time
        scan = db is not None and db.get_bind().dialect.name == "sqlite"
        if scan:
            start_time = type_coerce(PracticeLog.start_time, String()) + ""  # stored UTC text
        for bound, op in ((self.start, "ge"), (self.end, "lt")):
            if bound is None:
                continue
            day = bound if op == "ge" else bound + timedelta(days=1)
            at = datetime.combine(day, time(0), self.tz).astimezone(UTC)
            value: Any = at.strftime("%Y-%m-%d %H:%M:%S.%f") if scan else at
            clauses.append(start_time >= value if op == "ge" else start_time < value)
        return clauses


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


# --------------------------------------------------------------------------- per day


async def seconds_by_day_and_activity(
    db: AsyncSession, user_id: str, window: Window
) -> list[tuple[date, str, int, float]]:
    """``[(local date, activity_type, logs, seconds)]`` of logs started in ``window``."""
    where = window.where(user_id)
    span = await time_span(db, where)
    if span is None:
        return []
    day = local_day(db, PracticeLog.start_time, window.tz, *span).label("day")
    rows = await _fetch_all(
        db,
        select(
            day,
            PracticeLog.activity_type,
            func.count(),
            func.coalesce(func.sum(PracticeLog.duration_seconds), 0.0),
        )
        .where(*where)
        .group_by(day, PracticeLog.activity_type),
    )
    return [(day_of(d), a, int(n), float(s)) for d, a, n, s in rows]


async def seconds_by_hour(db: AsyncSession, user_id: str, window: Window) -> list[float]:
    """Practice seconds by local hour of the start (24 values)."""
    where = window.where(user_id)
    span = await time_span(db, where)
    out = [0.0] * 24
    if span is None:
        return out
    hour = ((local_epoch(db, PracticeLog.start_time, window.tz, *span) % DAY_S) // 3600).label("h")
    rows = await db.execute(
        select(hour, func.sum(PracticeLog.duration_seconds)).where(*where).group_by(hour)
    )
    for h, s in rows:
        out[int(h) % 24] += float(s or 0)
    return out


# --------------------------------------------------------------------------- groups


async def totals_by(
    db: AsyncSession, where: list[Any], column: Any, column2: Any = None
) -> list[dict[str, Any]]:
    """``[{"key", ("key2",) "sessions", "seconds", "xp"}]`` grouped by ``column``
    (and ``column2``)."""
    keys = [column.label("key")] + ([column2.label("key2")] if column2 is not None else [])
    rows = await db.execute(
        select(
            *keys,
            func.count(),
            func.coalesce(func.sum(PracticeLog.duration_seconds), 0.0),
            func.coalesce(func.sum(xp_expression()), 0.0),
        )
        .where(*where)
        .group_by(*keys)
    )
    out = []
    for row in rows:
        entry = {"key": row[0]}
        if column2 is not None:
            entry["key2"] = row[1]
        n, seconds, xp = row[len(keys) :]
        entry.update(sessions=int(n), seconds=float(seconds), xp=float(xp))
        out.append(entry)
    return out


async def totals_by_activity_and_instrument(
    db: AsyncSession, where: list[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`totals_by` activity and by lower-cased instrument, from one grouped scan."""
    rows = await totals_by(db, where, PracticeLog.activity_type, func.lower(PracticeLog.instrument))
    merged: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "i": {}}
    for row in rows:
        for side, key in (("a", row["key"]), ("i", row["key2"])):
            m = merged[side].setdefault(key, {"key": key, "sessions": 0, "seconds": 0.0, "xp": 0.0})
            m["sessions"] += row["sessions"]
            m["seconds"] += row["seconds"]
            m["xp"] += row["xp"]
    return list(merged["a"].values()), list(merged["i"].values())


def by_skill_area(by_activity: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold per-activity totals into skill areas (:data:`rooms.progress.SKILL_AREAS`),
    each with its own XP and level (the same formula on the area's XP)."""
    areas: dict[str, dict[str, Any]] = {
        area: {"skill_area": area, "sessions": 0, "seconds": 0.0, "xp_raw": 0.0}
        for area in rules.SKILL_AREAS
    }
    for row in by_activity:
        area = areas[rules.skill_area(row["key"])]
        area["sessions"] += row["sessions"]
        area["seconds"] += row["seconds"]
        area["xp_raw"] += row["xp"]
    out = []
    for area in areas.values():
        info = rules.level_info(area.pop("xp_raw"))
        out.append({**area, "seconds": round(area["seconds"], 3), **info})
    return out


# --------------------------------------------------------------------------- pieces


async def pieces(
    db: AsyncSession, user_id: str, where: list[Any] | None = None, *, with_starred: bool = True
) -> list[dict[str, Any]]:
    """Per-piece progress, most recently practised first: ``piece_key``, ``piece_id``,
    ``work_title``, ``composer``, ``times_practised``, ``total_seconds``,
    ``best_accuracy``/``mean_accuracy`` (%, room plays), ``best_tempo_bpm``,
    ``completed`` (played to the end in a room), ``starred``, ``first_practised``,
    ``last_practised`` (ISO 8601 UTC). A piece is a library ``piece_id``, else a
    ``work_title`` (case-insensitive)."""
    key = piece_key().label("k")
    where = where if where is not None else live_logs(user_id)
    rows = (
        await db.execute(
            select(
                key,
                func.max(PracticeLog.piece_id),
                func.max(PracticeLog.work_title),
                func.count(),
                func.coalesce(func.sum(PracticeLog.duration_seconds), 0.0),
                func.max(PracticeLog.accuracy_percentage),
                func.avg(PracticeLog.accuracy_percentage),
                func.max(PracticeLog.tempo_practiced),
                func.max(
                    case(
                        (and_(PracticeLog.source == "room", PracticeLog.complete.is_(True)), 1),
                        else_=0,
                    )
                ),
                func.min(PracticeLog.start_time),
                func.max(PracticeLog.start_time),
            )
            .where(*where, key.is_not(None))
            .group_by(key)
        )
    ).all()
    starred = set()
    if with_starred:
        starred = set(
            (
                await db.scalars(
                    select(StarredPiece.piece_id).where(StarredPiece.user_id == user_id)
                )
            ).all()
        )
    ids = [r[1] for r in rows if r[1] is not None] + list(starred)
    library = {
        r.id: r
        for r in (
            await db.execute(
                select(SheetMusic.id, SheetMusic.title, SheetMusic.composer).where(
                    SheetMusic.id.in_(set(ids))
                )
            )
        ).all()
    }
    out = []
    for k, pid, title, n, seconds, best, mean, tempo, done, first, last in rows:
        lib = library.get(pid)
        out.append(
            {
                "piece_key": k,
                "piece_id": pid,
                "work_title": lib.title if lib else title,
                "composer": lib.composer if lib else None,
                "times_practised": int(n),
                "total_seconds": round(float(seconds), 3),
                "best_accuracy": _round(best),
                "mean_accuracy": _round(mean),
                "best_tempo_bpm": _round(tempo),
                "completed": bool(done),
                "starred": pid in starred,
                "first_practised": _iso(first),
                "last_practised": _iso(last),
            }
        )
    practised = {p["piece_id"] for p in out}
    for pid in starred - practised:  # starred, not practised yet
        lib = library.get(pid)
        out.append(
            {
                "piece_key": pid,
                "piece_id": pid,
                "work_title": lib.title if lib else None,
                "composer": lib.composer if lib else None,
                "times_practised": 0,
                "total_seconds": 0.0,
                "best_accuracy": None,
                "mean_accuracy": None,
                "best_tempo_bpm": None,
                "completed": False,
                "starred": True,
                "first_practised": None,
                "last_practised": None,
            }
        )
    out.sort(key=lambda p: (p["last_practised"] or "", p["piece_key"]), reverse=True)
    return out


# --------------------------------------------------------------------------- improvement

METRICS = {
    "accuracy": PracticeLog.accuracy_percentage,
    "timing_deviation_ms": PracticeLog.result["onset_std_ms"].as_float(),
    "tempo_bpm": PracticeLog.tempo_practiced,
}
"""Trend metrics: accuracy (%, room plays), timing deviation (the standard deviation of
a room play's onset deviations, ms — lower is steadier), played tempo (BPM)."""

# Only room plays are scored: reading the (wide) result of other logs is pointless.
METRIC_WHERE = {
    "accuracy": [PracticeLog.accuracy_percentage.is_not(None)],
    "timing_deviation_ms": [PracticeLog.source == "room"],
    "tempo_bpm": [PracticeLog.tempo_practiced.is_not(None)],
}


async def _trend_sums(
    db: AsyncSession, where: list[Any], name: str
) -> dict[str, tuple[int, float, float, float, float]]:
    """Per piece: n, Σx, Σy, Σxy, Σx² of metric ``name`` against x = the number of the
    measured session (1, 2, 3, … in start order, ties by id)."""
    key = piece_key()
    logs = select(
        key.label("k"),
        PracticeLog.start_time.label("t"),
        PracticeLog.id.label("id"),
        METRICS[name].label("y"),
    ).where(*where, *METRIC_WHERE[name], key.is_not(None))
    logs = logs.subquery()
    numbered = select(
        logs.c.k,
        logs.c.y,
        func.row_number().over(partition_by=logs.c.k, order_by=(logs.c.t, logs.c.id)).label("x"),
    ).subquery()
    x, y = numbered.c.x, numbered.c.y
    rows = await db.execute(
        select(
            numbered.c.k, func.count(y), func.sum(x), func.sum(y), func.sum(x * y), func.sum(x * x)
        )
        .where(y.is_not(None))
        .group_by(numbered.c.k)
    )
    return {
        k: (int(n), float(sx), float(sy), float(sxy), float(sxx)) for k, n, sx, sy, sxy, sxx in rows
    }


def trend(sums: tuple[int, float, float, float, float] | None) -> dict[str, Any]:
    """``{"n", "mean", "slope_per_session"}`` from :func:`_trend_sums`' tuple."""
    if sums is None or sums[0] == 0:
        return {"n": 0, "mean": None, "slope_per_session": None}
    n, sx, sy, sxy, sxx = sums
    return {
        "n": n,
        "mean": _round(sy / n, 3),
        "slope_per_session": _round(rules.slope_from_sums(n, sx, sy, sxy, sxx), 4),
    }


async def improvement(db: AsyncSession, user_id: str, where: list[Any]) -> list[dict[str, Any]]:
    """Per piece practised in ``where``: ``sessions``, first/last practised, and for each
    metric of :data:`METRICS` ``n`` (sessions measuring it), ``mean`` and
    ``slope_per_session`` — the least-squares slope of the metric against the number
    of the measured session of that piece (1, 2, 3, … in start order)."""
    pieces_ = await pieces(db, user_id, where, with_starred=False)
    sums = {name: await _trend_sums(db, where, name) for name in METRICS}
    out = []
    for p in pieces_:
        entry: dict[str, Any] = {
            "piece_key": p["piece_key"],
            "piece_id": p["piece_id"],
            "work_title": p["work_title"],
            "sessions": p["times_practised"],
            "first_practised": p["first_practised"],
            "last_practised": p["last_practised"],
        }
        for name in METRICS:
            entry[name] = trend(sums[name].get(p["piece_key"]))
        out.append(entry)
    out.sort(key=lambda e: (-e["sessions"], e["piece_key"]))
    return out


# --------------------------------------------------------------------------- export

EXPORT_COLUMNS = (
    "id",
    "start_time",
    "end_time",
    "duration_seconds",
    "activity_type",
    "source",
    "instrument",
    "piece_id",
    "work_title",
    "part",
    "session_id",
    "tempo_practiced",
    "tempo_target",
    "notes_played",
    "notes_correct",
    "accuracy_percentage",
    "complete",
    "self_rating",
    "mood",
    "focus_areas",
    "notes",
)
"""The export's columns (the logbook's names; times ISO 8601 UTC)."""


def _utc_text(value: Any) -> Any:
    if isinstance(value, str):  # SQLite's stored text is UTC already: no parsing
        return value.replace(" ", "T", 1) + "+00:00"
    return _iso(value)


def _json_list(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _csv_list(value: Any) -> str:
    return ";".join(str(v) for v in _json_list(value))


def _bool(value: Any) -> bool:
    return bool(value)


def _csv_bool(value: Any) -> str:
    return "true" if value else "false"


async def _fetch_all(db: AsyncSession, stmt: Any) -> list[tuple]:
    """All rows of ``stmt`` as plain tuples. On SQLite, straight from aiosqlite
    (``execute_fetchall``, one hop to its thread, no SQLAlchemy row objects: about
    twice as fast for 50 000 rows); elsewhere through SQLAlchemy."""
    if db.get_bind().dialect.name != "sqlite":
        return list((await db.execute(stmt)).tuples())
    conn = await db.connection()
    # Inline bind values (quoted by SQLAlchemy's SQLite dialect, in storage format).
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = await conn.get_raw_connection()
    return list(await raw.driver_connection.execute_fetchall(sql))


async def export_rows(db: AsyncSession, where: list[Any], *, csv: bool = False) -> list:
    """The logs matching ``where``, oldest first, as sequences of :data:`EXPORT_COLUMNS`:
    times ISO 8601 UTC strings; ``focus_areas`` a list (``csv``: joined with ``;``);
    ``complete`` a bool (``csv``: ``"true"``/``"false"``)."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    cols = []
    convert: dict[int, Any] = {}
    complete = None
    for index, name in enumerate(EXPORT_COLUMNS):
        # Raw values: no per-value type processing of 50 000 rows × 21 columns; on
        # SQLite the conversions run in SQL, so most rows need no Python work at all.
        col = type_coerce(getattr(PracticeLog, name), NullType())
        if name in ("start_time", "end_time"):
            if sqlite:  # stored as UTC text
                col = func.replace(col, " ", "T").op("||")("+00:00")
            else:
                convert[index] = _utc_text
        elif name == "complete":
            if csv:
                col = case((col.is_(None), None), (col == True, "true"), else_="false")  # noqa: E712
            elif sqlite:  # 0/1: JSON true/false
                complete = index
            else:
                convert[index] = _bool
        elif name == "focus_areas":
            convert[index] = _csv_list if csv else _json_list
        cols.append(col)
    rows = await _fetch_all(db, select(*cols).where(*where))
    # Sorted here: ORDER BY start_time would read the table in index order (random
    # access); reading it in storage order and sorting the keys is about twice as fast.
    rows.sort(key=itemgetter(EXPORT_COLUMNS.index("start_time"), EXPORT_COLUMNS.index("id")))
    if complete is not None:
        k = complete
        rows = [r[:k] + (None if r[k] is None else r[k] == 1,) + r[k + 1 :] for r in rows]
    for index, fn in convert.items():
        for i in [i for i, row in enumerate(rows) if row[index] is not None]:
            row = list(rows[i])
            row[index] = fn(row[index])
            rows[i] = row
    return rows


TEXT_COLUMNS = frozenset(
    {
        "id",
        "activity_type",
        "source",
        "instrument",
        "piece_id",
        "work_title",
        "part",
        "session_id",
        "mood",
        "notes",
    }
)


def _sqlite_csv_field(name: str) -> Any:
    """One CSV field (RFC 4180) of column ``name``, computed by SQLite."""
    col = type_coerce(getattr(PracticeLog, name), NullType())
    if name in ("start_time", "end_time"):
        value = func.replace(col, " ", "T").op("||")("+00:00")
    elif name == "complete":
        return case((col.is_(None), ""), (col == True, "true"), else_="false")  # noqa: E712
    elif name == "focus_areas":
        joined = (
            select(func.group_concat(literal_column("value"), ";"))
            .select_from(func.json_each(col))
            .scalar_subquery()
        )
        value = literal('"').op("||")(func.replace(joined, '"', '""')).op("||")('"')
    elif name in TEXT_COLUMNS:
        value = literal('"').op("||")(func.replace(col, '"', '""')).op("||")('"')
    else:
        value = cast(col, Text)
    return func.coalesce(value, "")


async def export_csv(db: AsyncSession, where: list[Any]) -> bytes:
    """The logs matching ``where`` as CSV (header row of :data:`EXPORT_COLUMNS`, CRLF
    line ends, text fields quoted). On SQLite each line is built by SQLite itself
    (one string per log instead of 21 values through Python's ``csv``)."""
    header = ",".join(EXPORT_COLUMNS) + "\r\n"
    if db.get_bind().dialect.name != "sqlite":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerows(await export_rows(db, where, csv=True))
        return (header + out.getvalue()).encode()
    line = _sqlite_csv_field(EXPORT_COLUMNS[0])
    for name in EXPORT_COLUMNS[1:]:
        line = line.op("||")(",").op("||")(_sqlite_csv_field(name))
    rows = await _fetch_all(db, select(line, PracticeLog.start_time, PracticeLog.id).where(*where))
    rows.sort(key=itemgetter(1, 2))
    if not rows:
        return header.encode()
    return (header + "\r\n".join(r[0] for r in rows) + "\r\n").encode()


async def accuracy_series(
    db: AsyncSession, where: list[Any], keys: list[str], *, limit: int = 200
) -> dict[str, list[float]]:
    """Accuracy (%) of each of the pieces ``keys``, session by session (oldest first,
    the last ``limit`` measured sessions of each)."""
    if not keys:
        return {}
    key = piece_key()
    rows = await _fetch_all(
        db,
        select(
            key,
            type_coerce(PracticeLog.start_time, NullType()),
            PracticeLog.id,
            PracticeLog.accuracy_percentage,
        ).where(*where, key.in_(keys), PracticeLog.accuracy_percentage.is_not(None)),
    )
    rows.sort(key=itemgetter(1, 2))  # start order (stored UTC text or datetimes)
    out: dict[str, list[float]] = {k: [] for k in keys}
    for k, _start, _id, accuracy in rows:
        out[k].append(float(accuracy))
    return {k: v[-limit:] for k, v in out.items()}
