"""Analytics REST API: practice time, repertoire, improvement, export, PDF report.

Every route needs ``Authorization: Bearer TOKEN`` and sees only the caller's
logs. Common query parameters: ``tz`` (IANA zone; default the user's, see
``PUT /api/users/me/time-zone``), ``from``/``to`` (local dates
``YYYY-MM-DD``, inclusive, on the log's start; at most 3660 days).

=======================================  ===================================================
route                                    answer
=======================================  ===================================================
``GET /api/analytics/practice-time``     ``{"time_zone", "from", "to", "total_seconds",
                                         "sessions", "by_day": [{"date", "seconds",
                                         "sessions"}] (every day), "by_week": [{"week"
                                         (ISO, "2025-W18"), "start", "seconds",
                                         "sessions"}], "by_activity": [{"activity_type",
                                         "seconds", "sessions"}]}``; default the last 30
                                         days
``GET /api/analytics/repertoire``        ``{"pieces": [piece progress]}`` (times practised,
                                         time, best/mean accuracy, best tempo, completed,
                                         starred, first/last practised)
``GET /api/analytics/improvement``       ``{"pieces": [{"piece_key", "piece_id",
                                         "work_title", "sessions", "accuracy",
                                         "timing_deviation_ms", "tempo_bpm"}]}``, each
                                         metric ``{"n", "mean", "slope_per_session"}``
                                         against the measured session number;
                                         ``?piece_id=`` for one piece
``GET /api/analytics/export``            ``?format=csv|json`` (default json): every log;
                                         JSON ``{"time_zone", "columns", "rows"}``
``GET /api/analytics/report.pdf``        a PDF practice report with charts; default the
                                         last 12 weeks
=======================================  ===================================================

Units: seconds, percent (accuracy 0–100), BPM, milliseconds; slopes are per
session of the piece. Errors: ``400 invalid_time_zone``, ``invalid_date``,
``invalid_range``, ``invalid_format``, ``invalid_value``; ``401``.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import orjson
from aiohttp import web

from rooms import progress as rules
from rooms.errors import RoomError
from server.appkeys import SESSIONMAKER
from server.db.models import PracticeLog, User
from server.rest.apidoc import OBJECT, Op, Query
from server.rest.common import json_response
from server.rest.progress import RANGE, date_range, handler, request_zone
from server.services import analytics as store
from server.services import analytics_export
from server.services import progress as ps

routes = web.RouteTableDef()

REPORT_DAYS = 84


def _day_series(rows: list[tuple[date, str, int, float]], start: date, end: date) -> dict[str, Any]:
    by_day: dict[date, list[float]] = {}
    by_activity: dict[str, list[float]] = {}
    for day, activity, n, seconds in rows:
        by_day.setdefault(day, [0, 0.0])
        by_day[day][0] += n
        by_day[day][1] += seconds
        by_activity.setdefault(activity, [0, 0.0])
        by_activity[activity][0] += n
        by_activity[activity][1] += seconds
    days, weeks = [], {}
    day = start
    while day <= end:
        n, seconds = by_day.get(day, (0, 0.0))
        days.append({"date": day.isoformat(), "seconds": round(seconds, 3), "sessions": n})
        year, week, _ = day.isocalendar()
        w = weeks.setdefault(
            (year, week),
            {
                "week": f"{year}-W{week:02d}",
                "start": (day - timedelta(days=day.weekday())).isoformat(),
                "seconds": 0.0,
                "sessions": 0,
            },
        )
        w["seconds"] = round(w["seconds"] + seconds, 3)
        w["sessions"] += n
        day += timedelta(days=1)
    return {
        "total_seconds": round(sum(d["seconds"] for d in days), 3),
        "sessions": sum(d["sessions"] for d in days),
        "by_day": days,
        "by_week": list(weeks.values()),
        "by_activity": sorted(
            (
                {"activity_type": a, "seconds": round(s, 3), "sessions": n}
                for a, (n, s) in by_activity.items()
            ),
            key=lambda a: -a["seconds"],
        ),
    }


async def practice_time_figures(db, request: web.Request, default_days: int) -> dict[str, Any]:
    zone_name, tz = await request_zone(request, db)
    start, end = date_range(request, tz, default_days=default_days)
    rows = await store.seconds_by_day_and_activity(
        db, request["user_id"], store.Window(tz, start, end)
    )
    return {
        "time_zone": zone_name,
        "from": start.isoformat(),
        "to": end.isoformat(),
        **_day_series(rows, start, end),
    }


@routes.get("/api/analytics/practice-time")
@handler
async def practice_time(request: web.Request) -> web.Response:
    """Practice seconds and logs by local day, ISO week and activity."""
    async with request.app[SESSIONMAKER]() as db:
        return json_response(await practice_time_figures(db, request, 30))


@routes.get("/api/analytics/repertoire")
@handler
async def repertoire(request: web.Request) -> web.Response:
    """Per-piece progress over the range (default: all time)."""
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        start, end = date_range(request, tz, default_days=None)
        where = store.Window(tz, start, end).where(request["user_id"], db=db)
        pieces = await store.pieces(db, request["user_id"], where)
    if start is not None or end is not None:
        pieces = [p for p in pieces if p["times_practised"]]
    return json_response({"time_zone": zone_name, "pieces": pieces})


@routes.get("/api/analytics/improvement")
@handler
async def improvement(request: web.Request) -> web.Response:
    """Accuracy, timing deviation and tempo trends per piece (least-squares slopes)."""
    user_id = request["user_id"]
    piece_id = request.rel_url.query.get("piece_id")
    if piece_id is not None and not 1 <= len(piece_id) <= 64:
        raise RoomError("invalid_value", "piece_id: 1–64 characters")
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        start, end = date_range(request, tz, default_days=None)
        where = store.Window(tz, start, end).where(user_id, db=db)
        if piece_id is not None:
            where.append(PracticeLog.piece_id == piece_id)
        pieces = await store.improvement(db, user_id, where)
    return json_response({"time_zone": zone_name, "pieces": pieces})


@routes.get("/api/analytics/export")
@handler
async def export(request: web.Request) -> web.Response:
    """Every live log (optionally in ``from``/``to``), oldest first, as ``format=json``
    (``{"time_zone", "columns", "rows": [[value per column]]}`` — one array per log,
    compact for 50 000 logs) or ``format=csv`` (a header row of
    :data:`server.services.analytics.EXPORT_COLUMNS`; lists joined with ``;``)."""
    fmt = request.rel_url.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise RoomError("invalid_format", "format must be csv or json")
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        start, end = date_range(request, tz, default_days=None)
        where = store.Window(tz, start, end).where(request["user_id"])
        if fmt == "csv":
            body = await analytics_export.export_csv(db, where)
        else:
            rows = await analytics_export.export_rows(db, where)
    headers = {"Content-Disposition": f'attachment; filename="tutti-practice.{fmt}"'}
    if fmt == "json":
        body = orjson.dumps(
            {"time_zone": zone_name, "columns": analytics_export.EXPORT_COLUMNS, "rows": rows}
        )
        return web.Response(body=body, content_type="application/json", headers=headers)
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers=headers)


def _report_piece(piece: dict[str, Any], accuracy: list[float]) -> dict[str, Any]:
    slope = rules.least_squares_slope(range(1, len(accuracy) + 1), accuracy)
    return {
        "piece_key": piece["piece_key"],
        "work_title": piece["work_title"],
        "sessions": piece["times_practised"],
        "accuracy": {
            "n": len(accuracy),
            "mean": sum(accuracy) / len(accuracy) if accuracy else None,
            "slope_per_session": slope,
        },
    }


@routes.get("/api/analytics/report.pdf")
@handler
async def report(request: web.Request) -> web.Response:
    """A PDF practice report (matplotlib, :mod:`server.services.analytics_report`) of the range
    (default the last 12 weeks): summary, time per day and week, time by activity,
    accuracy per session of the most practised pieces."""
    from server.services.analytics_report import ReportData, render

    user_id = request["user_id"]
    async with request.app[SESSIONMAKER]() as db:
        time_figures = await practice_time_figures(db, request, REPORT_DAYS)
        zone_name, tz = await request_zone(request, db)
        start = date.fromisoformat(time_figures["from"])
        end = date.fromisoformat(time_figures["to"])
        where = store.Window(tz, start, end).where(user_id, db=db)
        played = await store.pieces(db, user_id, where, with_starred=False)
        top = sorted(played, key=lambda p: (-p["times_practised"], p["piece_key"]))[:5]
        series = await analytics_export.accuracy_series(db, where, [p["piece_key"] for p in top])
        row = await ps.progress_row(db, user_id)
        name = (await db.get(User, user_id)).display_name
        await db.commit()
    # Streaks of the report's range, from its own per-day figures.
    practised = [date.fromisoformat(d["date"]) for d in time_figures["by_day"] if d["sessions"]]
    s = rules.streaks(practised, ps.today_in(tz))
    streak = {"current": s.current, "longest": s.longest}
    data = ReportData(
        display_name=name,
        time_zone=zone_name,
        start=start,
        end=end,
        practice=time_figures,
        pieces=[_report_piece(p, series.get(p["piece_key"], [])) for p in top],
        accuracy_series=series,
        streak=streak,
        xp=row.xp,
        level=row.level,
    )
    pdf = await asyncio.get_running_loop().run_in_executor(None, render, data)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="tutti-practice-report.pdf"'},
    )


# --------------------------------------------------------------------------- the document

OPERATIONS = [
    Op("GET", "/api/analytics/practice-time", "Practice time by day, week and activity",
       "analytics", OBJECT, query=RANGE),
    Op("GET", "/api/analytics/repertoire", "Per-piece practice over a range", "analytics",
       OBJECT, query=RANGE),
    Op("GET", "/api/analytics/improvement", "Accuracy, timing and tempo trends per piece",
       "analytics", OBJECT, query=(*RANGE, Query("piece_id"))),
    Op("GET", "/api/analytics/export", "Every live log as JSON or CSV", "analytics", OBJECT,
       alternatives={"text/csv": {"type": "string"}},
       query=(*RANGE, Query("format", schema={"type": "string", "enum": ["json", "csv"],
                                               "default": "json"}))),
    Op("GET", "/api/analytics/report.pdf", "A PDF practice report with charts", "analytics",
       {"type": "string", "format": "binary"}, response_type="application/pdf", query=RANGE),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
