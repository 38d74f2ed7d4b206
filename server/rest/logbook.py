"""The logbook's REST API (logs, quick logs, templates, goals, repertoire), on top of the
sync write path, and the helpers of every logbook route.

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
``POST /api/practice/logs``                 a manual entry → 201
``GET /api/practice/logs[/{id}]``           list (filters, pagination) / one entry
``PUT|PATCH /api/practice/logs/{id}``       per-field patch
``DELETE /api/practice/logs/{id}``          tombstone → 204
``POST /api/practice/quick-log``            ``activity_type`` + ``duration_seconds``;
                                            ``start_time`` defaults to now − duration → 201
``/api/practice/templates[/{id}]``          POST, GET, PUT/PATCH, DELETE
``/api/goals[/{id}]``, ``/api/repertoire[/{id}]``  the same for goals and repertoire items
==========================================  ==================================================

The profile and preferences (``/api/users/me…``) are in :mod:`server.rest.users`,
the practice timers (``/api/practice/sessions…``) in :mod:`server.rest.practice_timers`;
both use the helpers here.

Lists take ``limit`` (1–200, default 50) and ``offset`` (0–10⁹) and answer
``{"<name>": [...], "total", "limit", "offset"}``, newest first. Log and
session lists filter by ``from``/``to`` (``YYYY-MM-DD``, inclusive, or an
ISO date-time with offset; on ``start_time``; 1900-01-01 to 9998-12-31), ``activity_type``,
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
from server.appkeys import SESSIONMAKER, SYNC
from server.db.models import PracticeLog, new_id, utcnow
from server.rest.apidoc import Op, Query, RowOut, fields_body, listing, model_query
from server.rest.common import caller as _caller
from server.rest.common import http_error, json_response
from server.rest.common import json_body as _json_body
from server.services.logbook import (
    ACTIVITY_TYPES,
    ENTITIES,
    LOG_SOURCES,
    LOGBOOK_ENTRY,
    Entity,
    row_to_json,
)
from server.services.schemas import (
    MAX_DAY,
    MIN_DAY,
    QueryInt,
    QueryModel,
    _Strict,
    parse,
    parse_query,
)

routes = web.RouteTableDef()

LIST_LIMIT = 50
LIST_LIMIT_MAX = 200
RowId = Annotated[str, Field(min_length=1, max_length=64)]


class _NewId(_Strict):
    id: RowId


def caller_id(request: web.Request) -> str:
    """The caller's user id (verified by :func:`handler` before anything else)."""
    if "user_id" not in request:
        request["user_id"] = _caller(request)["sub"]
    return request["user_id"]


async def body_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not await request.read():
        return {}
    data = await _json_body(request)
    if not isinstance(data, dict):
        raise RoomError("wrong_type", "the body must be a JSON object")
    return data


def take_id(body: dict[str, Any]) -> tuple[str, bool]:
    """The client-made ``id`` of a create (validated), else a new one; and whether the
    server made it (then no row can hold it yet)."""
    if "id" not in body:
        return new_id(), True
    return parse(_NewId, {"id": body.pop("id")}).id, False


def handler(fn):
    """Authenticate first (401 before any body is looked at); ``RoomError`` → HTTP error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        caller_id(request)
        try:
            return await fn(request)
        except RoomError as exc:
            raise http_error(exc) from None

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# --------------------------------------------------------------------------- generic rows


async def get_row(request: web.Request, entity: Entity, row_id: str, *, where=()) -> Any:
    """The caller's live row ``row_id`` or ``not_found``."""
    model = entity.model
    async with request.app[SESSIONMAKER]() as db:
        row = await db.scalar(
            select(model).where(
                model.id == row_id,
                model.user_id == caller_id(request),
                model.deleted_at.is_(None),
                *where,
            )
        )
    if row is None:
        raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")
    return row


MAX_OFFSET = 10**9


class PageQuery(QueryModel):
    """``?limit=&offset=`` of a list."""

    limit: QueryInt = Field(default=LIST_LIMIT, ge=1, le=LIST_LIMIT_MAX)
    offset: QueryInt = Field(default=0, ge=0, le=MAX_OFFSET)


def _page(request: web.Request) -> tuple[int, int]:
    page = parse_query(PageQuery, request.rel_url.query)
    return page.limit, page.offset


async def list_page(
    request: web.Request, entity: Entity, key: str, where=(), order=None
) -> web.Response:
    model = entity.model
    limit, offset = _page(request)
    conditions = (model.user_id == caller_id(request), model.deleted_at.is_(None), *where)
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
        body = await body_object(request)
        row_id, fresh = take_id(body)
        written = await request.app[SYNC].write(
            caller_id(request), entity.name, "create", row_id, body, fresh_id=fresh
        )
        return json_response(written.json(), status=201)

    @handler
    async def list_all(request: web.Request) -> web.Response:
        return await list_page(request, entity, key)

    @handler
    async def get_one(request: web.Request) -> web.Response:
        return json_response(row_to_json(entity, await get_row(request, entity, path_id(request))))

    @handler
    async def patch(request: web.Request) -> web.Response:
        body = await body_object(request)
        written = await request.app[SYNC].write(
            caller_id(request), entity.name, "update", path_id(request), body
        )
        return json_response(written.json())

    @handler
    async def delete(request: web.Request) -> web.Response:
        await _delete(request, entity, path_id(request))
        return web.Response(status=204)

    routes.post(prefix)(create)
    routes.get(prefix)(listing or list_all)
    routes.get(prefix + "/{id}")(get_one)
    routes.put(prefix + "/{id}")(patch)
    routes.patch(prefix + "/{id}")(patch)
    routes.delete(prefix + "/{id}")(delete)


def path_id(request: web.Request) -> str:
    return request.match_info["id"]


async def _delete(request: web.Request, entity: Entity, row_id: str) -> None:
    """A REST delete: ``not_found`` for a missing, foreign or already deleted row."""
    await get_row(request, entity, row_id)
    written = await request.app[SYNC].write(caller_id(request), entity.name, "delete", row_id, {})
    if written.version is None:  # deleted in between by another device
        raise RoomError("not_found", f"no {entity.name} with id {row_id!r}")


# --------------------------------------------------------------------------- logs


def _time_bound(raw: str, *, upper: bool) -> datetime:
    """A ``from``/``to`` filter: a date (whole day, UTC) or an ISO date-time with offset,
    between :data:`MIN_DAY` and the end of :data:`MAX_DAY` (UTC); else ``invalid_value``."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if upper:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise RoomError("invalid_value", "a date-time filter needs a UTC offset")
            moment = moment.astimezone(UTC)
    except ValueError:
        raise RoomError("invalid_value", f"{raw!r} is not a date or an ISO date-time") from None
    except OverflowError:  # 9999-12-31 + 1 day, 0001-01-01T00:00+14:00 in UTC, …
        raise RoomError("invalid_value", f"{raw!r} is outside the supported years") from None
    if not _FIRST_MOMENT <= moment <= _LAST_MOMENT:
        raise RoomError(
            "invalid_value", f"{raw!r}: dates are {MIN_DAY.isoformat()}..{MAX_DAY.isoformat()}"
        )
    return moment


_FIRST_MOMENT = datetime(MIN_DAY.year, MIN_DAY.month, MIN_DAY.day, tzinfo=UTC)
_LAST_MOMENT = datetime(MAX_DAY.year, MAX_DAY.month, MAX_DAY.day, tzinfo=UTC) + timedelta(days=1)


def log_filters(request: web.Request) -> list[Any]:
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


LOG_ORDER = (PracticeLog.start_time.desc(), PracticeLog.id.desc())


@handler
async def list_logs(request: web.Request) -> web.Response:
    return await list_page(request, LOGBOOK_ENTRY, "logs", log_filters(request), LOG_ORDER)


@routes.post("/api/practice/quick-log")
@handler
async def quick_log(request: web.Request) -> web.Response:
    """``{"activity_type", "duration_seconds", ...}``: a log of practice just finished.

    Without ``start_time`` it is now − duration on the server clock; ``end_time``
    defaults to start + duration.
    """
    body = await body_object(request)
    row_id, fresh = take_id(body)
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
        caller_id(request),
        "logbook_entry",
        "create",
        row_id,
        {},
        server_values={**values, "source": "quick_log"},
        fresh_id=fresh,
    )
    return json_response(written.json(), status=201)


_crud("/api/practice/logs", LOGBOOK_ENTRY, "logs", listing=list_logs)
_crud("/api/practice/templates", ENTITIES["practice_template"], "templates")
_crud("/api/goals", ENTITIES["goal"], "goals")
_crud("/api/repertoire", ENTITIES["repertoire_item"], "repertoire")


# --------------------------------------------------------------------------- the document


PAGE = model_query(PageQuery)
_BOUNDS = {"formatMinimum": MIN_DAY.isoformat(), "formatMaximum": MAX_DAY.isoformat()}
DAY_OR_MOMENT = {"anyOf": [{"type": "string", "format": "date", **_BOUNDS},
                           {"type": "string", "format": "date-time", **_BOUNDS}]}  # fmt: skip
LOG_FILTERS = (
    Query(
        "from",
        description="first day (YYYY-MM-DD) or ISO date-time with offset, "
        f"{MIN_DAY.isoformat()} to {MAX_DAY.isoformat()}",
        schema=DAY_OR_MOMENT,
    ),
    Query(
        "to",
        description="last day (YYYY-MM-DD, inclusive) or ISO date-time with offset, "
        f"{MIN_DAY.isoformat()} to {MAX_DAY.isoformat()}",
        schema=DAY_OR_MOMENT,
    ),
    Query("activity_type", schema={"type": "string", "enum": list(ACTIVITY_TYPES)}),
    Query("piece_id"),
    Query("work_title", description="case-insensitive substring"),
    Query("source", schema={"type": "string", "enum": [*LOG_SOURCES, "room"]}),
)


def crud_operations(prefix: str, entity: Entity, key: str, tag: str, filters=()) -> list[Op]:
    """The six operations :func:`_crud` registers."""
    one = f"{prefix}/{{id}}"
    create = fields_body(entity, required=entity.required, with_id=True)
    patch = fields_body(entity)
    name = entity.name.replace("_", " ")
    return [
        Op("POST", prefix, f"Create a {name}", tag, RowOut, 201, create, errors=(409,)),
        Op("GET", prefix, f"List the caller's {name}s, newest first", tag,
           listing(key), query=PAGE + tuple(filters)),
        Op("GET", one, f"One {name}", tag, RowOut),
        Op("PUT", one, f"Change fields of a {name}", tag, RowOut, body=patch),
        Op("PATCH", one, f"Change fields of a {name}", tag, RowOut, body=patch),
        Op("DELETE", one, f"Delete a {name} (a tombstone every device pulls)", tag, None, 204),
    ]  # fmt: skip


OPERATIONS = [
    Op("POST", "/api/practice/quick-log", "Log practice just finished", "practice", RowOut, 201,
       fields_body(LOGBOOK_ENTRY, exclude={"source"}, with_id=True,
                   required=["activity_type", "duration_seconds"]),
       errors=(409,)),
    *crud_operations("/api/practice/logs", LOGBOOK_ENTRY, "logs", "practice", LOG_FILTERS),
    *crud_operations("/api/practice/templates", ENTITIES["practice_template"], "templates",
                     "practice"),
    *crud_operations("/api/goals", ENTITIES["goal"], "goals", "goals"),
    *crud_operations("/api/repertoire", ENTITIES["repertoire_item"], "repertoire", "repertoire"),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
