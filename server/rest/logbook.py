"""The logbook's REST API, on top of the sync write path.

Every write here is one server-side mutation through
:class:`server.services.sync.SyncService` (no ``client_id``, no ``client_mutations``
bookkeeping): it takes a sync version in its own transaction, deletes are
tombstones, and the user's devices get ``sync:poke`` — exactly like a pushed
mutation. Every route needs ``Authorization: Bearer TOKEN`` (guest tokens
too) and sees only the caller's rows: someone else's id answers ``404
not_found``, the same as an id that does not exist.

Bodies use the column names of :mod:`server.services.logbook` (``activity_type``,
``start_time``, ``duration_seconds``, ``work_title``, ``self_rating``, …) and
are validated by the same models. A created row may carry a client-made
``"id"`` (1–64 characters; a retried create then answers ``409
already_exists`` instead of creating a second entry); otherwise the server
makes one. Rows come back as ``{"id", "version", **fields}``.

==========================================  ==================================================
route                                       does
==========================================  ==================================================
``GET|PUT|DELETE /api/users/me``            profile; PUT ``{"display_name"}``; DELETE
                                            deactivates the account, purged later
                                            (:mod:`server.services.privacy`) → 204
``GET|PUT|DELETE /api/users/me/preferences``  ``{"preferences", "version"}``; PUT merges key
                                            by key (``null`` removes a key); DELETE clears
``POST /api/practice/sessions/start``       a running timer entry (``source: "timer"``,
                                            ``start_time`` = now on the server) → 201
``POST /api/practice/sessions/{id}/end``    ``end_time`` = now, ``duration_seconds`` from the
                                            server clock; body: annotations only
``GET /api/practice/sessions[/{id}]``       timer entries and room logs
``POST /api/practice/logs``                 a manual entry → 201
``GET /api/practice/logs[/{id}]``           list (filters, pagination) / one entry
``PUT|PATCH /api/practice/logs/{id}``       per-field patch
``DELETE /api/practice/logs/{id}``          tombstone → 204
``POST /api/practice/quick-log``            ``activity_type`` + ``duration_seconds``;
                                            ``start_time`` defaults to now − duration → 201
``/api/practice/templates[/{id}]``          POST, GET, PUT/PATCH, DELETE
``/api/goals[/{id}]``, ``/api/repertoire[/{id}]``  the same for goals and repertoire items
==========================================  ==================================================

Lists take ``limit`` (1–200, default 50) and ``offset`` and answer
``{"<name>": [...], "total", "limit", "offset"}``, newest first. Log and
session lists filter by ``from``/``to`` (``YYYY-MM-DD``, inclusive, or an
ISO date-time with offset; on ``start_time``), ``activity_type``,
``piece_id``, ``work_title`` (case-insensitive substring) and ``source``.

Errors: ``400`` (validation codes of :mod:`server.services.schemas`, ``unknown_piece``,
``read_only_field``), ``401``, ``404 not_found``, ``409 already_exists`` /
``already_ended``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select

from rooms.errors import RoomError
from server.appkeys import MANAGER, PRIVACY_BUS, SESSIONMAKER, SYNC
from server.db import repository
from server.db.models import PracticeLog, User, new_id, utcnow
from server.rest.common import caller as _caller
from server.rest.common import http_error, json_response
from server.rest.common import json_body as _json_body
from server.rest.sync import query_int
from server.services.logbook import (
    ACTIVITY_TYPES,
    ENTITIES,
    LOG_SOURCES,
    LOGBOOK_ENTRY,
    PREFERENCES_ID,
    ROOM_LOG_WRITABLE,
    Entity,
    row_to_json,
)
from server.services.privacy import deactivate
from server.services.schemas import DisplayName, _Strict, parse

routes = web.RouteTableDef()

LIST_LIMIT = 50
LIST_LIMIT_MAX = 200
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


class ProfileIn(_Strict):
    display_name: DisplayName


RowId = Annotated[str, Field(min_length=1, max_length=64)]


class _NewId(_Strict):
    id: RowId


def _user(request: web.Request) -> str:
    """The caller's user id (verified by :func:`handler` before anything else)."""
    if "user_id" not in request:
        request["user_id"] = _caller(request)["sub"]
    return request["user_id"]


async def _body(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not await request.read():
        return {}
    data = await _json_body(request)
    if not isinstance(data, dict):
        raise RoomError("wrong_type", "the body must be a JSON object")
    return data


def _take_id(body: dict[str, Any]) -> tuple[str, bool]:
    """The client-made ``id`` of a create (validated), else a new one; and whether the
    server made it (then no row can hold it yet)."""
    if "id" not in body:
        return new_id(), True
    return parse(_NewId, {"id": body.pop("id")}).id, False


def handler(fn):
    """Authenticate first (401 before any body is looked at); ``RoomError`` → HTTP error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        _user(request)
        try:
            return await fn(request)
        except RoomError as exc:
            raise http_error(exc) from None

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# --------------------------------------------------------------------------- users/me


def _profile(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "display_name": user.display_name,
        "is_guest": user.is_guest,
        "email": user.email,
        "created_at": user.created_at.isoformat(),
    }


@routes.get("/api/users/me")
@handler
async def get_me(request: web.Request) -> web.Response:
    user_id = _user(request)
    async with request.app[SESSIONMAKER]() as db:
        user = await repository.get_user(db, user_id)
        if user is None:
            raise RoomError("unknown_user", "this token's user no longer exists")
        return json_response(_profile(user))


@routes.put("/api/users/me")
@handler
async def put_me(request: web.Request) -> web.Response:
    """``{"display_name"}`` (1–50 characters). Tokens issued before keep the old name."""
    user_id = _user(request)
    body = parse(ProfileIn, await _body(request))
    async with request.app[SESSIONMAKER].begin() as db:
        user = await db.get(User, user_id)
        if user is None:
            raise RoomError("unknown_user", "this token's user no longer exists")
        user.display_name = body.display_name
        user.updated_at = utcnow()
        await db.flush()
        return json_response(_profile(user))


@routes.delete("/api/users/me")
@handler
async def delete_me(request: web.Request) -> web.Response:
    """Delete the caller's account: deactivated at once (tokens, logins and sockets
    refused), purged ``purge_after_days`` later (see :mod:`server.services.privacy`) → 204."""
    user_id = _user(request)
    async with request.app[SESSIONMAKER]() as db:
        if await repository.get_user(db, user_id) is None:
            raise RoomError("unknown_user", "this token's user no longer exists")
    await deactivate(
        request.app[SESSIONMAKER], request.app[MANAGER], user_id, request.app.get(PRIVACY_BUS)
    )
    return web.Response(status=204)


# --------------------------------------------------------------------------- preferences


async def _preferences(request: web.Request, user_id: str) -> dict[str, Any]:
    async with request.app[SESSIONMAKER]() as db:
        row = await db.get(ENTITIES["preferences"].model, user_id)
    if row is None:
        return {"preferences": {}, "version": 0}
    return {"preferences": dict(row.data or {}), "version": row.version}


@routes.get("/api/users/me/preferences")
@handler
async def get_preferences(request: web.Request) -> web.Response:
    return json_response(await _preferences(request, _user(request)))


@routes.put("/api/users/me/preferences")
@routes.patch("/api/users/me/preferences")
@handler
async def put_preferences(request: web.Request) -> web.Response:
    """Merge the body's keys into the preferences (``null`` removes a key)."""
    user_id = _user(request)
    fields = await _body(request)
    written = await request.app[SYNC].write(user_id, "preferences", "put", PREFERENCES_ID, fields)
    return json_response({"preferences": dict(written.row.data), "version": written.row.version})


@routes.delete("/api/users/me/preferences")
@handler
async def delete_preferences(request: web.Request) -> web.Response:
    user_id = _user(request)
    await request.app[SYNC].write(user_id, "preferences", "delete", PREFERENCES_ID, {})
    return web.Response(status=204)


# --------------------------------------------------------------------------- generic rows


async def _get_row(request: web.Request, entity: Entity, row_id: str, *, where=()) -> Any:
    """The caller's live row ``row_id`` or ``not_found``."""
    model = entity.model
    async with request.app[SESSIONMAKER]() as db:
        row = await db.scalar(
            select(model).where(
                model.id == row_id,
                model.user_id == _user(request),
                model.deleted_at.is_(None),
                *where,
            )
        )
    if row is None:
        raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")
    return row


def _page(request: web.Request) -> tuple[int, int]:
    try:
        limit = query_int(request, "limit", LIST_LIMIT)
        offset = query_int(request, "offset", 0)
    except web.HTTPException:
        raise RoomError("wrong_type", "limit and offset must be integers") from None
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise RoomError("out_of_range", f"limit must be 1-{LIST_LIMIT_MAX}")
    if not 0 <= offset <= 10**9:
        raise RoomError("out_of_range", "offset must be ≥ 0")
    return limit, offset


async def _list(
    request: web.Request, entity: Entity, key: str, where=(), order=None
) -> web.Response:
    model = entity.model
    limit, offset = _page(request)
    conditions = (model.user_id == _user(request), model.deleted_at.is_(None), *where)
    order = order or (model.created_at.desc(), model.id.desc())
    async with request.app[SESSIONMAKER]() as db:
        total = await db.scalar(select(func.count()).select_from(model).where(*conditions))
        rows = (
            await db.scalars(
                select(model).where(*conditions).order_by(*order).limit(limit).offset(offset)
            )
        ).all()
    return json_response(
        {
            key: [row_to_json(entity, r) for r in rows],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


def _crud(prefix: str, entity: Entity, key: str, listing=None) -> None:
    """POST/GET list, GET/PUT/PATCH/DELETE one, for ``entity`` under ``prefix``."""

    @handler
    async def create(request: web.Request) -> web.Response:
        body = await _body(request)
        row_id, fresh = _take_id(body)
        written = await request.app[SYNC].write(
            _user(request), entity.name, "create", row_id, body, fresh_id=fresh
        )
        return json_response(written.json(), status=201)

    @handler
    async def list_rows(request: web.Request) -> web.Response:
        return await _list(request, entity, key)

    @handler
    async def get_one(request: web.Request) -> web.Response:
        return json_response(row_to_json(entity, await _get_row(request, entity, _id(request))))

    @handler
    async def patch(request: web.Request) -> web.Response:
        body = await _body(request)
        written = await request.app[SYNC].write(
            _user(request), entity.name, "update", _id(request), body
        )
        return json_response(written.json())

    @handler
    async def delete(request: web.Request) -> web.Response:
        await _delete(request, entity, _id(request))
        return web.Response(status=204)

    routes.post(prefix)(create)
    routes.get(prefix)(listing or list_rows)
    routes.get(prefix + "/{id}")(get_one)
    routes.put(prefix + "/{id}")(patch)
    routes.patch(prefix + "/{id}")(patch)
    routes.delete(prefix + "/{id}")(delete)


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def _delete(request: web.Request, entity: Entity, row_id: str) -> None:
    """A REST delete: ``not_found`` for a missing, foreign or already deleted row."""
    await _get_row(request, entity, row_id)
    written = await request.app[SYNC].write(_user(request), entity.name, "delete", row_id, {})
    if written.version is None:  # deleted in between by another device
        raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")


# --------------------------------------------------------------------------- logs


def _time_bound(raw: str, *, upper: bool) -> datetime:
    """A ``from``/``to`` filter: a date (whole day, UTC) or an ISO date-time with offset."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if upper else moment
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise RoomError("invalid_value", "a date-time filter needs a UTC offset")
        return moment.astimezone(UTC)
    except ValueError:
        raise RoomError("invalid_value", f"{raw!r} is not a date or an ISO date-time") from None
    except OverflowError:  # 9999-12-31 + 1 day, 0001-01-01T00:00+14:00 in UTC, …
        raise RoomError("invalid_value", f"{raw!r} is outside the supported years") from None


def _log_filters(request: web.Request) -> list[Any]:
    query = request.rel_url.query
    where: list[Any] = []
    if "from" in query:
        where.append(PracticeLog.start_time >= _time_bound(query["from"], upper=False))
    if "to" in query:
        bound = _time_bound(query["to"], upper=True)
        where.append(
            PracticeLog.start_time < bound
            if len(query["to"]) == 10
            else PracticeLog.start_time <= bound
        )
    if "activity_type" in query:
        if query["activity_type"] not in ACTIVITY_TYPES:
            raise RoomError("invalid_value", f"activity_type must be one of {ACTIVITY_TYPES}")
        where.append(PracticeLog.activity_type == query["activity_type"])
    if "piece_id" in query:
        where.append(PracticeLog.piece_id == query["piece_id"])
    if "work_title" in query:
        where.append(PracticeLog.work_title.icontains(query["work_title"], autoescape=True))
    if "source" in query:
        if query["source"] not in (*LOG_SOURCES, "room"):
            raise RoomError("invalid_value", f"source must be one of {(*LOG_SOURCES, 'room')}")
        where.append(PracticeLog.source == query["source"])
    return where


_LOG_ORDER = (PracticeLog.start_time.desc(), PracticeLog.id.desc())


@handler
async def list_logs(request: web.Request) -> web.Response:
    return await _list(request, LOGBOOK_ENTRY, "logs", _log_filters(request), _LOG_ORDER)


@routes.post("/api/practice/quick-log")
@handler
async def quick_log(request: web.Request) -> web.Response:
    """``{"activity_type", "duration_seconds", ...}``: a log of practice just finished.

    Without ``start_time`` it is now − duration on the server clock; ``end_time``
    defaults to start + duration.
    """
    body = await _body(request)
    row_id, fresh = _take_id(body)
    if "source" in body:
        raise RoomError("unknown_field", "source: a quick log's source is quick_log")
    values = LOGBOOK_ENTRY.parse(body)
    for name in ("activity_type", "duration_seconds"):
        if name not in values:
            raise RoomError("missing_field", f"{name}: required")
    duration = timedelta(seconds=values["duration_seconds"])
    if "start_time" not in values:
        values["start_time"] = utcnow() - duration
    values.setdefault("end_time", values["start_time"] + duration)
    written = await request.app[SYNC].write(
        _user(request),
        "logbook_entry",
        "create",
        row_id,
        {},
        server_values={**values, "source": "quick_log"},
        fresh_id=fresh,
    )
    return json_response(written.json(), status=201)


# --------------------------------------------------------------------------- sessions

_SESSION_SOURCES = PracticeLog.source.in_(("timer", "room"))


@routes.post("/api/practice/sessions/start")
@handler
async def start_session(request: web.Request) -> web.Response:
    """Start a practice timer: ``{"activity_type", "instrument"?, "work_title"?, ...}``."""
    body = await _body(request)
    row_id, fresh = _take_id(body)
    extra = sorted(set(body) - TIMER_START_FIELDS)
    if extra:
        raise RoomError("unknown_field", f"{extra[0]}: not a field of a session start")
    if "activity_type" not in body:
        raise RoomError("missing_field", "activity_type: required")
    written = await request.app[SYNC].write(
        _user(request),
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
async def end_session(request: web.Request) -> web.Response:
    """Stop the timer; the body may add ``self_rating``, ``focus_areas``, ``notes``, ``mood``."""
    body = await _body(request, allow_empty=True)
    extra = sorted(set(body) - ROOM_LOG_WRITABLE)
    if extra:
        raise RoomError("unknown_field", f"{extra[0]}: not a field of a session end")
    written = await request.app[SYNC].end_timer(_user(request), _id(request), body)
    return json_response(written.json())


@routes.get("/api/practice/sessions")
@handler
async def list_sessions(request: web.Request) -> web.Response:
    where = [_SESSION_SOURCES, *_log_filters(request)]
    return await _list(request, LOGBOOK_ENTRY, "sessions", where, _LOG_ORDER)


@routes.get("/api/practice/sessions/{id}")
@handler
async def get_session(request: web.Request) -> web.Response:
    row = await _get_row(request, LOGBOOK_ENTRY, _id(request), where=(_SESSION_SOURCES,))
    return json_response(row_to_json(LOGBOOK_ENTRY, row))


_crud("/api/practice/logs", LOGBOOK_ENTRY, "logs", listing=list_logs)
_crud("/api/practice/templates", ENTITIES["practice_template"], "templates")
_crud("/api/goals", ENTITIES["goal"], "goals")
_crud("/api/repertoire", ENTITIES["repertoire_item"], "repertoire")
