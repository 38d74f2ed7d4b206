"""Practice timers: ``/api/practice/sessions…``, logbook entries timed by the server clock.

A *practice session* here is a logbook entry (:data:`server.services.logbook.LOGBOOK_ENTRY`)
of source ``timer`` (started and stopped through these routes) or ``room``
(written when a room finished). (Not the saved *room sessions* of
``/api/sessions``: :mod:`server.rest.sessions`.)

==========================================  ================================================
route                                       does
==========================================  ================================================
``POST /api/practice/sessions/start``       a running timer entry (``source: "timer"``,
                                            ``start_time`` = now on the server,
                                            ``duration_seconds`` 0) → 201, the row
``POST /api/practice/sessions/{id}/end``    ``end_time`` = now, ``duration_seconds`` (s) from
                                            the server clock; body: annotations only
                                            (``self_rating``, ``focus_areas``, ``notes``,
                                            ``mood``) → the row
``GET /api/practice/sessions``              timer entries and room logs, newest first, with
                                            the filters and paging of the log list
``GET /api/practice/sessions/{id}``         one of them
==========================================  ================================================

Rows are ``{"id", "version", **fields}``. Every route needs ``Authorization:
Bearer TOKEN``. Errors: ``400`` validation codes, ``401``, ``404 not_found``,
``409 already_exists`` / ``already_ended``.
"""

from __future__ import annotations

from aiohttp import web

from rooms.errors import RoomError
from server.appkeys import SYNC
from server.db.models import PracticeLog, utcnow
from server.rest.apidoc import Op, RowOut, fields_body, listing
from server.rest.common import json_response
from server.rest.logbook import (
    LOG_FILTERS,
    LOG_ORDER,
    PAGE,
    body_object,
    caller_id,
    get_row,
    handler,
    list_page,
    log_filters,
    path_id,
    take_id,
)
from server.services.logbook import LOGBOOK_ENTRY, ROOM_LOG_WRITABLE, row_to_json

routes = web.RouteTableDef()

TIMER_START_FIELDS = frozenset(
    {
        "activity_type",
        "instrument",
        "piece_id",
        "work_title",
        "pieces",
        "tempo_target",
        "focus_areas",
        "notes",
        "mood",
    }
)
"""The fields a timer's start may set."""

_TIMER_SOURCES = PracticeLog.source.in_(("timer", "room"))


@routes.post("/api/practice/sessions/start")
@handler
async def start_timer(request: web.Request) -> web.Response:
    """Start a practice timer: ``{"activity_type", "instrument"?, "work_title"?, ...}``."""
    body = await body_object(request)
    row_id, fresh = take_id(body)
    extra = sorted(set(body) - TIMER_START_FIELDS)
    if extra:
        raise RoomError("unknown_field", f"{extra[0]}: not a field of a session start")
    if "activity_type" not in body:
        raise RoomError("missing_field", "activity_type: required")
    written = await request.app[SYNC].write(
        caller_id(request),
        "logbook_entry",
        "create",
        row_id,
        body,
        server_values={"source": "timer", "start_time": utcnow(), "duration_seconds": 0.0},
        fresh_id=fresh,
    )
    return json_response(written.json(), status=201)


@routes.post("/api/practice/sessions/{id}/end")
@handler
async def end_timer(request: web.Request) -> web.Response:
    """Stop the timer; the body may add ``self_rating``, ``focus_areas``, ``notes``, ``mood``."""
    body = await body_object(request, allow_empty=True)
    extra = sorted(set(body) - ROOM_LOG_WRITABLE)
    if extra:
        raise RoomError("unknown_field", f"{extra[0]}: not a field of a session end")
    written = await request.app[SYNC].end_timer(caller_id(request), path_id(request), body)
    return json_response(written.json())


@routes.get("/api/practice/sessions")
@handler
async def list_timers(request: web.Request) -> web.Response:
    where = [_TIMER_SOURCES, *log_filters(request)]
    return await list_page(request, LOGBOOK_ENTRY, "sessions", where, LOG_ORDER)


@routes.get("/api/practice/sessions/{id}")
@handler
async def get_timer(request: web.Request) -> web.Response:
    row = await get_row(request, LOGBOOK_ENTRY, path_id(request), where=(_TIMER_SOURCES,))
    return json_response(row_to_json(LOGBOOK_ENTRY, row))


# --------------------------------------------------------------------------- the document

OPERATIONS = [
    Op("POST", "/api/practice/sessions/start", "Start a practice timer", "practice", RowOut,
       201, fields_body(LOGBOOK_ENTRY, include=TIMER_START_FIELDS, required=["activity_type"],
                        with_id=True),
       errors=(409,)),
    Op("POST", "/api/practice/sessions/{id}/end", "Stop a practice timer", "practice", RowOut,
       body=fields_body(LOGBOOK_ENTRY, include=ROOM_LOG_WRITABLE), body_required=False,
       errors=(409,)),
    Op("GET", "/api/practice/sessions", "Timer entries and room logs", "practice",
       listing("sessions"), query=PAGE + LOG_FILTERS),
    Op("GET", "/api/practice/sessions/{id}", "One timer entry or room log", "practice", RowOut),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
