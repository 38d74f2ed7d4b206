"""Progress REST API: XP and level, streaks, achievements, per-piece, per-instrument
and per-skill-area progress, and the user's time zone.

Every route needs ``Authorization: Bearer TOKEN`` and sees only the caller's
data. ``?tz=`` (an IANA zone name) overrides the stored time zone for one
answer. Rules: :mod:`rooms.progress`; queries: :mod:`server.services.analytics`.

=============================================  =============================================
route                                          answer
=============================================  =============================================
``GET /api/progress/overview``                 XP, level, streaks, totals, achievements count,
                                               skill areas, recent pieces
``GET /api/progress/streaks``                  ``{"time_zone", "today", "current", "longest",
                                               "last_practice_day", "days_practised",
                                               "recent_days"}``
``GET /api/progress/achievements``             ``{"achievements": [{"code", "title",
                                               "description", "unlocked", "unlocked_at"}],
                                               "unlocked", "total"}``
``GET /api/progress/statistics``               totals, by activity, skill area, instrument,
                                               weekday and hour (local)
``GET /api/progress/instrument/{instrument}``  the same figures for one instrument
``GET /api/progress/pieces``                   ``{"pieces": [piece progress]}``
``PUT /api/progress/pieces/{piece_id}``        ``{"starred": bool}`` → that piece's progress
``GET|PUT /api/users/me/time-zone``            ``{"time_zone": "Europe/Paris"}``
=============================================  =============================================

Errors: ``400 invalid_time_zone`` (not an IANA name), ``400`` validation codes,
``401``, ``404 unknown_instrument`` (no log of the caller names it),
``404 unknown_piece``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import delete, func, select

from rooms import progress as rules
from rooms.errors import RoomError
from server.appkeys import PROGRESS_REFRESHER, SESSIONMAKER
from server.db.models import PracticeLog, SheetMusic, StarredPiece, User, UserAchievement
from server.rest.apidoc import OBJECT, Op, Query, model_query
from server.rest.common import caller as _caller
from server.rest.common import http_error, json_response
from server.rest.common import json_body as _json_body
from server.services import analytics as store
from server.services import progress as ps
from server.services import progress_refresh
from server.services.schemas import QueryDay, QueryModel, _Strict, parse, parse_query

routes = web.RouteTableDef()

MAX_INSTRUMENT = 100


def handler(fn):
    """Authenticate first (401), then run; ``RoomError`` → a JSON 4xx."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        request["user_id"] = _caller(request)["sub"]
        await progress_refresh.settle(
            request.app.get(PROGRESS_REFRESHER), request["user_id"]
        )  # latest writes first
        try:
            return await fn(request)
        except RoomError as exc:
            raise http_error(exc) from None

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# --------------------------------------------------------------------------- parameters


async def request_zone(request: web.Request, db) -> tuple[str, ZoneInfo]:
    """``?tz=`` if given (validated), else the user's stored zone."""
    name = request.rel_url.query.get("tz")
    if name is None:
        name = await ps.user_zone_name(db, request["user_id"])
    return name, ps.zone(name)


class DayRange(QueryModel):
    """``?from=&to=``: local days ``YYYY-MM-DD``, inclusive, within
    :data:`~server.services.schemas.MIN_DAY`..:data:`~server.services.schemas.MAX_DAY`."""

    start: QueryDay | None = Field(default=None, alias="from", description="first local day")
    end: QueryDay | None = Field(default=None, alias="to", description="last local day")


MAX_RANGE_DAYS = 3660


def date_range(
    request: web.Request, tz: ZoneInfo, *, default_days: int | None
) -> tuple[date | None, date | None]:
    """``?from=&to=`` local dates (inclusive). With ``default_days`` a missing bound
    defaults to the ``default_days`` days ending today; otherwise it stays open.
    ``invalid_date`` (not ``YYYY-MM-DD``), ``out_of_range`` (a day beyond
    :data:`~server.services.schemas.MIN_DAY`..:data:`~server.services.schemas.MAX_DAY`),
    ``invalid_range`` when from > to or the range is longer than 3660 days."""
    days = parse_query(DayRange, request.rel_url.query)
    start, end = days.start, days.end
    if default_days is not None:
        end = end or ps.today_in(tz)
        start = start or end - timedelta(days=default_days - 1)
    if start is not None and end is not None:
        if start > end:
            raise RoomError("invalid_range", "from must not be after to")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise RoomError("invalid_range", f"a range spans at most {MAX_RANGE_DAYS} days")
    return start, end


def instrument_name(raw: str) -> str:
    name = raw.strip().lower()
    if not 1 <= len(name) <= MAX_INSTRUMENT:
        raise RoomError("invalid_value", f"instrument: 1–{MAX_INSTRUMENT} characters")
    return name


# --------------------------------------------------------------------------- figures


async def streak_figures(db, user_id: str, zone_name: str, tz: ZoneInfo) -> dict[str, Any]:
    today = ps.today_in(tz)
    days = await ps.practice_days(db, user_id, tz)
    s = rules.streaks(days, today)
    recent = sorted(d for d in days if d > today - timedelta(days=35))
    return {
        "time_zone": zone_name,
        "today": today.isoformat(),
        "current": s.current,
        "longest": s.longest,
        "last_practice_day": s.last_day.isoformat() if s.last_day else None,
        "days_practised": len(days),
        "recent_days": [d.isoformat() for d in recent],
    }


async def breakdown(db, where: list[Any]) -> dict[str, Any]:
    """Totals, by activity, by skill area and by instrument of the logs in ``where``."""
    totals = await ps.log_totals(db, where)
    activities, instruments = await store.totals_by_activity_and_instrument(db, where)
    sessions = totals["sessions"]
    return {
        **rules.level_info(totals["xp"]),
        "sessions": sessions,
        "room_sessions": totals["room_sessions"],
        "duets": totals["duets"],
        "total_seconds": round(totals["total_seconds"], 3),
        "mean_session_seconds": round(totals["total_seconds"] / sessions, 3) if sessions else None,
        "mean_accuracy": store._round(totals["mean_accuracy"]),
        "best_piece_accuracy": store._round(totals["best_piece_accuracy"]),
        "pieces": totals["pieces"],
        "by_activity": sorted(
            (
                {
                    "activity_type": a["key"],
                    "sessions": a["sessions"],
                    "seconds": round(a["seconds"], 3),
                }
                for a in activities
            ),
            key=lambda a: -a["seconds"],
        ),
        "by_skill_area": store.by_skill_area(activities),
        "by_instrument": sorted(
            (
                {
                    "instrument": i["key"],
                    "sessions": i["sessions"],
                    "seconds": round(i["seconds"], 3),
                    **rules.level_info(i["xp"]),
                }
                for i in instruments
                if i["key"] is not None
            ),
            key=lambda i: -i["seconds"],
        ),
    }


async def local_patterns(db, user_id: str, window: store.Window) -> dict[str, Any]:
    """Practice seconds by local weekday (Monday first) and by local hour."""
    weekdays = [0.0] * 7
    days = set()
    for day, _activity, _n, seconds in await store.seconds_by_day_and_activity(db, user_id, window):
        weekdays[day.weekday()] += seconds
        days.add(day)
    hours = await store.seconds_by_hour(db, user_id, window)
    s = rules.streaks(days, ps.today_in(window.tz))
    return {
        "by_weekday_seconds": [round(s, 3) for s in weekdays],
        "by_hour_seconds": [round(s, 3) for s in hours],
        "days_practised": len(days),
        "current_streak": s.current,
        "longest_streak": s.longest,
    }


# --------------------------------------------------------------------------- routes


@routes.get("/api/progress/overview")
@handler
async def overview(request: web.Request) -> web.Response:
    """XP, level, streaks, totals, achievements and the five latest pieces."""
    user_id = request["user_id"]
    async with request.app[SESSIONMAKER].begin() as db:
        zone_name, tz = await request_zone(request, db)
        row = await ps.progress_row(db, user_id)
        today = ps.today_in(tz)
        if zone_name == row.time_zone:
            last = date.fromisoformat(row.last_practice_day) if row.last_practice_day else None
            current, longest = rules.current_streak(last, row.run_days, today), row.longest_streak
        else:
            s = rules.streaks(await ps.practice_days(db, user_id, tz), today)
            current, longest, last = s.current, s.longest, s.last_day
        unlocked = await db.scalar(
            select(func.count())
            .select_from(UserAchievement)
            .where(UserAchievement.user_id == user_id)
        )
        activities = await store.totals_by(db, ps.live_logs(user_id), PracticeLog.activity_type)
        pieces = await store.pieces(db, user_id)
    return json_response(
        {
            "user_id": user_id,
            "time_zone": zone_name,
            **rules.level_info(row.xp),
            "sessions": row.sessions,
            "duets": row.duets,
            "total_seconds": round(row.total_seconds, 3),
            "pieces_practised": row.pieces,
            "best_piece_accuracy": row.best_piece_accuracy,
            "streak": {
                "current": current,
                "longest": longest,
                "last_practice_day": last.isoformat() if last else None,
                "today": today.isoformat(),
            },
            "achievements": {"unlocked": unlocked, "total": len(rules.ACHIEVEMENTS)},
            "skill_areas": store.by_skill_area(activities),
            "recent_pieces": pieces[:5],
        }
    )


@routes.get("/api/progress/streaks")
@handler
async def streaks(request: web.Request) -> web.Response:
    """Current and longest streak (days) in the user's time zone; ``recent_days`` the
    practice days of the last 35 local days."""
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        return json_response(await streak_figures(db, request["user_id"], zone_name, tz))


@routes.get("/api/progress/achievements")
@handler
async def achievements(request: web.Request) -> web.Response:
    """Every achievement with ``unlocked`` and ``unlocked_at`` (ISO 8601 UTC or null)."""
    user_id = request["user_id"]
    async with request.app[SESSIONMAKER].begin() as db:
        await ps.progress_row(db, user_id)  # a user from before progress existed
        got = {
            a.code: a.unlocked_at
            for a in (
                await db.scalars(select(UserAchievement).where(UserAchievement.user_id == user_id))
            ).all()
        }
    items = [
        {
            "code": a.code,
            "title": a.title,
            "description": a.description,
            "unlocked": a.code in got,
            "unlocked_at": got[a.code].isoformat() if a.code in got else None,
        }
        for a in rules.ACHIEVEMENTS
    ]
    return json_response({"achievements": items, "unlocked": len(got), "total": len(items)})


@routes.get("/api/progress/statistics")
@handler
async def statistics(request: web.Request) -> web.Response:
    """Totals, XP and level, by activity / skill area / instrument, by local weekday
    and hour, days practised and streaks; optional ``from``/``to`` (local dates)
    narrow it (streaks then count days in the range only)."""
    user_id = request["user_id"]
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        start, end = date_range(request, tz, default_days=None)
        window = store.Window(tz, start, end)
        figures = await breakdown(db, window.where(user_id, db=db))
        patterns = await local_patterns(db, user_id, window)
    return json_response(
        {
            "time_zone": zone_name,
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            **figures,
            **patterns,
        }
    )


@routes.get("/api/progress/instrument/{instrument}")
@handler
async def instrument(request: web.Request) -> web.Response:
    """Progress on one instrument (case-insensitive): XP and level on it, totals,
    skill areas, pieces and streaks counted on its logs only."""
    user_id = request["user_id"]
    name = instrument_name(request.match_info["instrument"])
    async with request.app[SESSIONMAKER]() as db:
        zone_name, tz = await request_zone(request, db)
        where = [*ps.live_logs(user_id), func.lower(PracticeLog.instrument) == name]
        figures = await breakdown(db, where)
        if figures["sessions"] == 0:
            raise RoomError("unknown_instrument", f"no practice logged on {name!r}")
        pieces = await store.pieces(db, user_id, where)
        span = await ps.time_span(db, where)
        day = ps.local_day(db, PracticeLog.start_time, tz, *span)
        days = [ps.day_of(n) for n in (await db.scalars(select(day).where(*where).distinct()))]
    s = rules.streaks(days, ps.today_in(tz))
    figures.pop("by_instrument")
    return json_response(
        {
            "instrument": name,
            "time_zone": zone_name,
            **figures,
            "current_streak": s.current,
            "longest_streak": s.longest,
            "days_practised": len(days),
            "pieces": [p for p in pieces if p["times_practised"]],
        }
    )


@routes.get("/api/progress/pieces")
@handler
async def list_pieces(request: web.Request) -> web.Response:
    """Per-piece progress (:func:`server.services.analytics.pieces`), starred ones included."""
    async with request.app[SESSIONMAKER]() as db:
        return json_response({"pieces": await store.pieces(db, request["user_id"])})


class StarIn(_Strict):
    starred: bool


@routes.put("/api/progress/pieces/{piece_id}")
@handler
async def star_piece(request: web.Request) -> web.Response:
    """``{"starred": bool}`` for a library piece → that piece's progress entry."""
    user_id = request["user_id"]
    body = parse(StarIn, await _json_body(request))
    piece_id = request.match_info["piece_id"]
    async with request.app[SESSIONMAKER].begin() as db:
        if len(piece_id) > 64 or await db.get(SheetMusic, piece_id) is None:
            raise RoomError("unknown_piece", f"no piece with id {piece_id!r}")
        have = await db.get(StarredPiece, (user_id, piece_id))
        if body.starred and have is None:
            db.add(StarredPiece(user_id=user_id, piece_id=piece_id))
        elif not body.starred and have is not None:
            await db.execute(
                delete(StarredPiece).where(
                    StarredPiece.user_id == user_id, StarredPiece.piece_id == piece_id
                )
            )
        await db.flush()
        entries = await store.pieces(db, user_id)
    entry = next((p for p in entries if p["piece_id"] == piece_id), None)
    if entry is None:  # unstarred and never practised
        entry = {"piece_id": piece_id, "starred": False, "times_practised": 0}
    return json_response(entry)


class TimeZoneIn(_Strict):
    time_zone: str


@routes.get("/api/users/me/time-zone")
@handler
async def get_time_zone(request: web.Request) -> web.Response:
    async with request.app[SESSIONMAKER]() as db:
        return json_response({"time_zone": await ps.user_zone_name(db, request["user_id"])})


@routes.put("/api/users/me/time-zone")
@handler
async def put_time_zone(request: web.Request) -> web.Response:
    """``{"time_zone": IANA name}``: streaks and daily analytics count days there from
    now on (the streaks are recomputed at once)."""
    user_id = request["user_id"]
    body = parse(TimeZoneIn, await _json_body(request))
    ps.zone(body.time_zone)  # invalid_time_zone
    async with request.app[SESSIONMAKER].begin() as db:
        user = await db.get(User, user_id)
        if user is None:
            raise RoomError("unknown_user", "this token's user no longer exists")
        user.time_zone = body.time_zone
        await db.flush()
        await ps.refresh_progress(db, user_id)
    return json_response({"time_zone": body.time_zone})


# --------------------------------------------------------------------------- the document

TZ = Query("tz", description="IANA time zone; default the caller's")
RANGE = (TZ, *model_query(DayRange))

OPERATIONS = [
    Op("GET", "/api/users/me/time-zone", "The caller's time zone (IANA)", "users", OBJECT),
    Op("PUT", "/api/users/me/time-zone", "Set the caller's time zone (IANA)", "users", OBJECT,
       body=TimeZoneIn),
    Op("GET", "/api/progress/overview", "XP, level, streaks, achievements", "progress",
       OBJECT, query=(TZ,)),
    Op("GET", "/api/progress/streaks", "Practice streaks in the caller's time zone",
       "progress", OBJECT, query=(TZ,)),
    Op("GET", "/api/progress/achievements", "Achievements, unlocked or not", "progress",
       OBJECT, query=(TZ,)),
    Op("GET", "/api/progress/statistics", "Totals and means over a date range", "progress",
       OBJECT, query=RANGE),
    Op("GET", "/api/progress/instrument/{instrument}", "Progress on one instrument",
       "progress", OBJECT, query=RANGE),
    Op("GET", "/api/progress/pieces", "Per-piece progress", "progress", OBJECT, query=(TZ,)),
    Op("PUT", "/api/progress/pieces/{piece_id}", "Star or unstar a piece", "progress", OBJECT,
       body=StarIn),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
