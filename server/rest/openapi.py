"""The OpenAPI 3.1 document of the REST API, served at ``GET /api/openapi.json``.

Built from :data:`OPERATIONS`, a declarative table of every operation, and
the pydantic models that validate the requests (:mod:`server.services.schemas`,
:mod:`server.rest.auth`, :mod:`server.services.sync`, :mod:`server.services.logbook`) plus
response models below that describe the answers. JSON Schema 2020-12 (what
pydantic emits) is OpenAPI 3.1's schema dialect, so the models go in as
they are, under ``components/schemas``.

**Adding a route.** ``tests/e2e/test_openapi.py`` fails for any route under
``/api`` of the application that the document lacks. Add an :class:`Op` to
:data:`OPERATIONS` (or to a list you append to it)::

    Op("GET", "/api/progress/streaks", "The caller's practice streaks", "progress",
       response=StreaksOut, query=(Query("tz", "string", "IANA time zone"),)),

``body``/``response`` take a pydantic model (its schema is generated), a
JSON Schema ``dict``, or ``None`` (no body). ``auth=True`` (the default)
adds the bearer scheme and a ``401``; a ``{param}`` in the path adds a
``404`` and a string path parameter; a body or query adds ``400``;
``errors`` adds more statuses (each answers :class:`ErrorOut`).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.rest import auth as auth_api
from server.rest import pieces as pieces_api
from server.rest import progress as progress_api
from server.rest.logbook import LIST_LIMIT, LIST_LIMIT_MAX, TIMER_START_FIELDS, ProfileIn
from server.services import library, sync
from server.services.logbook import (
    ACTIVITY_TYPES,
    ENTITIES,
    LOG_SOURCES,
    LOGBOOK_ENTRY,
    ROOM_LOG_WRITABLE,
    Entity,
)
from server.services.schemas import GuestIn

Schema = type[BaseModel] | dict[str, Any] | None

# --------------------------------------------------------------------------- response models


class _Out(BaseModel):
    """An answer: the keys listed are always there; more may be added later."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Out):
    code: str
    message: str


class ErrorOut(_Out):
    """Every error: ``{"error": {"code", "message"}}`` (see the README's error codes)."""

    error: ErrorDetail


class HealthOut(_Out):
    status: Literal["ok"]
    database: Literal["ok"]
    rooms: int = Field(ge=0)
    connections: int = Field(ge=0)
    fanout: dict[str, Any] | None = None


class LiveOut(_Out):
    status: Literal["ok"]


class ReadyOut(_Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
    failed: list[str] | None = None


class PieceOut(_Out):
    id: str
    title: str
    composer: str | None
    parts: list[Any]
    tempo_bpm: float | None
    duration_seconds: float | None
    difficulty: int | float | None
    source_type: str | None
    split_pitch: int | None
    ticks_per_beat: int | None
    time_signature: Any
    created_at: str | None


class PieceListOut(_Out):
    pieces: list[PieceOut]
    total: int = Field(ge=0)
    limit: int | None
    offset: int = Field(ge=0)


class RecommendedOut(_Out):
    level: int | float | None
    pieces: list[PieceOut]


class AnalysisOut(_Out):
    id: str


class PieceNotesOut(_Out):
    piece_id: str
    tempo_bpm: float
    duration_s: float
    parts: list[Any]


class RoomListOut(_Out):
    rooms: list[dict[str, Any]]


class SessionOut(_Out):
    session_id: str
    room_id: str | None
    name: str | None
    mode: str | None
    piece_id: str | None
    piece_title: str | None
    tempo_bpm: float | None
    host_user_id: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    end_reason: str | None
    participants: list[dict[str, Any]]
    asynchrony_ms: float | None
    logs: list[dict[str, Any]]
    results: dict[str, Any]


class GuestUserOut(_Out):
    id: str
    display_name: str


class GuestOut(_Out):
    access_token: str
    user: GuestUserOut


class UserInfoOut(_Out):
    id: str
    display_name: str
    email: str | None
    is_guest: bool


class LoginOut(_Out):
    sent: Literal[True]
    email: str
    expires_in: int = Field(description="link lifetime, s")


class TokensOut(_Out):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="access token lifetime, s")
    user: UserInfoOut


class VerifyOut(TokensOut):
    merged: dict[str, Any] | None


class ProfileOut(_Out):
    id: str
    display_name: str
    is_guest: bool
    email: str | None
    created_at: str


class PreferencesOut(_Out):
    preferences: dict[str, Any]
    version: int = Field(ge=0)


class PushErrorOut(_Out):
    code: str
    message: str
    mutation_id: int | None = None


class PushOut(_Out):
    last_mutation_id: int = Field(ge=0)
    version: int = Field(ge=0)
    error: PushErrorOut | None = None


class ChangeOut(_Out):
    entity: str
    id: str
    version: int
    deleted: bool
    fields: dict[str, Any] | None = None


class PullOut(_Out):
    changes: list[ChangeOut]
    cursor: int = Field(ge=0)
    has_more: bool


class RowOut(_Out):
    """A logbook row: ``{"id", "version", **fields}`` (fields of :mod:`server.services.logbook`)."""

    id: str
    version: int


class PushBody(sync.PushIn):
    """The push envelope with its mutations described (each checked when applied)."""

    mutations: list[sync.MutationIn] = Field(max_length=sync.MAX_MUTATIONS)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Query:
    """A query parameter: JSON Schema ``type`` (or a full ``schema``), description."""

    name: str
    type: str = "string"
    description: str = ""
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Op:
    """One operation; see the module docstring."""

    method: str
    path: str
    summary: str
    tag: str
    response: Schema = None
    status: int = 200
    body: Schema = None
    auth: bool = True
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    response_type: str = "application/json"
    body_type: str = "application/json"
    optional_auth: bool = False
    description: str = ""
    body_required: bool = True
    extra_responses: dict[int, Schema] = field(default_factory=dict)
    # More media types of the success answer (e.g. a query parameter picks JSON over a ZIP).
    alternatives: dict[str, Schema] = field(default_factory=dict)


MIDI = {"type": "string", "format": "binary"}
OBJECT = {"type": "object"}
TZ = Query("tz", description="IANA time zone; default the caller's")
RANGE = (
    TZ,
    Query("from", schema={"type": "string", "format": "date"}, description="local date"),
    Query("to", schema={"type": "string", "format": "date"}, description="local date"),
)


def model_query(model: type[BaseModel]) -> tuple[Query, ...]:
    """The query parameters a pydantic query model takes, one :class:`Query` per field.

    A query string has no null: ``anyOf [X, null]`` becomes ``X``.
    """
    out = []
    for name, prop in model.model_json_schema()["properties"].items():
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        schema = {k: v for k, v in branches[0].items() if k != "title"}
        if prop.get("default") is not None:
            schema["default"] = prop["default"]
        out.append(Query(name, description=prop.get("description", ""), schema=schema))
    return tuple(out)


PAGE = (
    Query("limit", schema={"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX,
                           "default": LIST_LIMIT}),
    Query("offset", schema={"type": "integer", "minimum": 0, "default": 0}),
)  # fmt: skip
DAY_OR_MOMENT = {"anyOf": [{"type": "string", "format": "date"},
                           {"type": "string", "format": "date-time"}]}  # fmt: skip
LOG_FILTERS = (
    Query(
        "from",
        description="first day (YYYY-MM-DD) or ISO date-time with offset",
        schema=DAY_OR_MOMENT,
    ),
    Query(
        "to",
        description="last day (YYYY-MM-DD, inclusive) or ISO date-time with offset",
        schema=DAY_OR_MOMENT,
    ),
    Query("activity_type", schema={"type": "string", "enum": list(ACTIVITY_TYPES)}),
    Query("piece_id"),
    Query("work_title", description="case-insensitive substring"),
    Query("source", schema={"type": "string", "enum": [*LOG_SOURCES, "room"]}),
)


def _crud(prefix: str, entity: Entity, key: str, tag: str, filters=()) -> list[Op]:
    """The six operations :func:`server.rest.logbook._crud` registers."""
    one = f"{prefix}/{{id}}"
    create = ("fields", entity, {"required": list(entity.required), "with_id": True})
    patch = ("fields", entity, {})
    name = entity.name.replace("_", " ")
    return [
        Op("POST", prefix, f"Create a {name}", tag, RowOut, 201, create, errors=(409,)),
        Op("GET", prefix, f"List the caller's {name}s, newest first", tag,
           ("list", key), query=PAGE + tuple(filters)),
        Op("GET", one, f"One {name}", tag, RowOut),
        Op("PUT", one, f"Change fields of a {name}", tag, RowOut, body=patch),
        Op("PATCH", one, f"Change fields of a {name}", tag, RowOut, body=patch),
        Op("DELETE", one, f"Delete a {name} (a tombstone every device pulls)", tag, None, 204),
    ]  # fmt: skip


OPERATIONS: list[Op] = [
    # -- probes and description
    Op("GET", "/livez", "Liveness: the process serves HTTP", "operations", LiveOut, auth=False),
    Op("GET", "/readyz", "Readiness: database and Redis reachable", "operations", ReadyOut,
       auth=False, extra_responses={503: ReadyOut}),
    Op("GET", "/metrics", "Prometheus metrics (text exposition 0.0.4)", "operations",
       {"type": "string"}, auth=False, response_type="text/plain"),
    Op("GET", "/api/health", "Health and counts of this process", "operations", HealthOut,
       auth=False),
    Op("GET", "/api/openapi.json", "This document", "operations", {"type": "object"},
       auth=False),
    # -- guests, pieces, sessions (server/rest/api.py)
    Op("POST", "/api/auth/guest", "Log in as a guest", "accounts", GuestOut, 201, GuestIn,
       auth=False),
    Op("GET", "/api/pieces", "The piece library, filtered and paged", "pieces", PieceListOut,
       auth=False, query=model_query(library.ListQuery)),
    Op("GET", "/api/pieces/random", "A random piece matching the filters", "pieces", PieceOut,
       auth=False, query=model_query(library.RandomQuery), errors=(404,)),
    Op("GET", "/api/pieces/recommended", "What the caller should practise next", "pieces",
       RecommendedOut, query=model_query(library.RecommendQuery)),
    Op("POST", "/api/pieces/generate", "Generate sight-reading material", "pieces", PieceOut,
       201, pieces_api.GenerateIn),
    Op("GET", "/api/pieces/{piece_id}/analysis", "A piece's analysis (difficulty, key, chords)",
       "pieces", AnalysisOut, auth=False),
    Op("GET", "/api/pieces/{piece_id}/notes", "A piece's notes per part (seconds)", "pieces",
       PieceNotesOut, auth=False),
    Op("GET", "/api/rooms", "Open rooms of this process", "rooms", RoomListOut),
    # -- progress and analytics (server/rest/progress.py, server/rest/analytics.py)
    Op("GET", "/api/users/me/time-zone", "The caller's time zone (IANA)", "users", OBJECT),
    Op("PUT", "/api/users/me/time-zone", "Set the caller's time zone (IANA)", "users", OBJECT,
       body=progress_api.TimeZoneIn),
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
       body=progress_api.StarIn),
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
    Op("POST", "/api/pieces", "Import a Standard MIDI File", "pieces", PieceOut, 201, MIDI,
       body_type="audio/midi", errors=(413,), query=(
           Query("title", schema={"type": "string", "maxLength": 200}),
           Query("composer"),
           Query("split_hands", schema={"type": "string", "enum": ["true", "false", "1", "0"]}),
           Query("split_pitch", schema={"type": "integer", "minimum": 0, "maximum": 127}),
       )),
    Op("GET", "/api/pieces/{piece_id}", "One piece", "pieces", PieceOut, auth=False),
    Op("GET", "/api/pieces/{piece_id}/midi", "A piece's MIDI file", "pieces", MIDI,
       auth=False, response_type="audio/midi"),
    Op("GET", "/api/sessions/{session_id}", "A saved session the caller took part in",
       "sessions", SessionOut),
    Op("GET", "/api/sessions/{session_id}/recording.mid", "A session's MIDI recording",
       "sessions", MIDI, response_type="audio/midi"),
    # -- accounts (server/rest/auth.py)
    Op("POST", "/api/auth/login", "Mail a login link", "accounts", LoginOut, 202,
       auth_api.LoginIn, auth=False, optional_auth=True, errors=(401, 429, 503)),
    Op("POST", "/api/auth/verify", "Trade a login link for tokens", "accounts", VerifyOut,
       body=auth_api.VerifyIn, auth=False, errors=(401, 409)),
    Op("POST", "/api/auth/refresh", "Rotate a refresh token", "accounts", TokensOut,
       body=auth_api.RefreshIn, auth=False, errors=(401,)),
    Op("POST", "/api/auth/logout", "Revoke a login's refresh tokens", "accounts", None, 204,
       auth_api.RefreshIn, auth=False, errors=(401,)),
    Op("GET", "/api/auth/me", "The caller", "accounts", UserInfoOut),
    # -- sync (server/rest/sync.py)
    Op("POST", "/api/sync/push", "Push mutations", "sync", PushOut, body=PushBody),
    Op("GET", "/api/sync/pull", "Pull changes after a cursor", "sync", PullOut, query=(
        Query("cursor", schema={"type": "integer", "minimum": 0, "default": 0}),
        Query("limit", schema={"type": "integer", "minimum": 1,
                               "maximum": sync.PULL_LIMIT_MAX, "default": sync.PULL_LIMIT}),
    )),
    # -- the logbook (server/rest/logbook.py)
    Op("GET", "/api/users/me", "The caller's profile", "users", ProfileOut),
    Op("PUT", "/api/users/me", "Change the display name", "users", ProfileOut, body=ProfileIn),
    Op("DELETE", "/api/users/me", "Deactivate the account now; purged after 30 days", "users",
       None, 204),
    Op("GET", "/api/users/me/data", "Everything stored about the caller (ZIP, or JSON)",
       "users", {"type": "string", "format": "binary"}, response_type="application/zip",
       alternatives={"application/json": {"type": "object"}},
       query=(Query("format", schema={"type": "string", "enum": ["zip", "json"],
                                      "default": "zip"}),)),
    Op("GET", "/api/users/me/preferences", "The preferences", "users", PreferencesOut),
    Op("PUT", "/api/users/me/preferences", "Merge keys into the preferences", "users",
       PreferencesOut, body={"type": "object", "maxProperties": 100}),
    Op("PATCH", "/api/users/me/preferences", "Merge keys into the preferences", "users",
       PreferencesOut, body={"type": "object", "maxProperties": 100}),
    Op("DELETE", "/api/users/me/preferences", "Clear the preferences", "users", None, 204),
    Op("POST", "/api/practice/sessions/start", "Start a practice timer", "practice", RowOut,
       201, ("fields", LOGBOOK_ENTRY, {"include": TIMER_START_FIELDS,
                                       "required": ["activity_type"], "with_id": True}),
       errors=(409,)),
    Op("POST", "/api/practice/sessions/{id}/end", "Stop a practice timer", "practice", RowOut,
       body=("fields", LOGBOOK_ENTRY, {"include": ROOM_LOG_WRITABLE}), body_required=False,
       errors=(409,)),
    Op("GET", "/api/practice/sessions", "Timer entries and room logs", "practice",
       ("list", "sessions"), query=PAGE + LOG_FILTERS),
    Op("GET", "/api/practice/sessions/{id}", "One timer entry or room log", "practice", RowOut),
    Op("POST", "/api/practice/quick-log", "Log practice just finished", "practice", RowOut, 201,
       ("fields", LOGBOOK_ENTRY, {"exclude": {"source"}, "with_id": True,
                                  "required": ["activity_type", "duration_seconds"]}),
       errors=(409,)),
    *_crud("/api/practice/logs", LOGBOOK_ENTRY, "logs", "practice", LOG_FILTERS),
    *_crud("/api/practice/templates", ENTITIES["practice_template"], "templates", "practice"),
    *_crud("/api/goals", ENTITIES["goal"], "goals", "goals"),
    *_crud("/api/repertoire", ENTITIES["repertoire_item"], "repertoire", "repertoire"),
]  # fmt: skip
"""Every documented operation. A route under ``/api`` missing here fails the tests."""


# --------------------------------------------------------------------------- building


class _Components:
    """``components/schemas``: pydantic models by name, their ``$defs`` hoisted."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def model(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's schema, inlined (its nested models go to the components)."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, sub)
        return schema

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        if model.__name__ not in self.schemas:
            self.schemas[model.__name__] = self.model(model)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def schema(self, spec: Any) -> dict[str, Any]:
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return self.ref(spec)
        if isinstance(spec, tuple) and spec[0] == "fields":
            return self.fields(spec[1], **spec[2])
        if isinstance(spec, tuple) and spec[0] == "list":
            return self.listing(spec[1])
        return copy.deepcopy(spec)

    def fields(
        self,
        entity: Entity,
        *,
        include=None,
        exclude=frozenset(),
        required=(),
        with_id: bool = False,
    ) -> dict[str, Any]:
        """A body of ``entity``'s fields (a subset), optionally with a client-made ``id``."""
        assert entity.fields is not None
        schema = self.model(entity.fields)
        props = {
            k: {n: x for n, x in v.items() if not (n == "default" and x is None)}
            for k, v in schema["properties"].items()
            if (include is None or k in include) and k not in exclude
        }  # "default: null" on a field that may not be null would contradict itself
        if with_id:
            props = {"id": {"type": "string", "minLength": 1, "maxLength": 64}, **props}
        out = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            out["required"] = list(required)
        return out

    def listing(self, key: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [key, "total", "limit", "offset"],
            "properties": {
                key: {"type": "array", "items": self.ref(RowOut)},
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer", "minimum": 0},
            },
        }


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request: a validation error code",
    401: "Missing, invalid or expired token, or an unknown user",
    404: "Not found (or not the caller's)",
    409: "Conflict",
    413: "Payload too large",
    429: "Too many requests",
    503: "Unavailable",
}


def build(operations: list[Op] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (default :data:`OPERATIONS`)."""
    components = _Components()
    error_ref = components.ref(ErrorOut)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS if operations is None else operations:
        item: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _operation_id(op),
        }
        if op.description:
            item["description"] = op.description
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        for q in op.query:
            schema = q.schema or {"type": q.type}
            param = {"name": q.name, "in": "query", "required": False, "schema": schema}
            if q.description:
                param["description"] = q.description
            params.append(param)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": op.body_required,
                "content": {op.body_type: {"schema": components.schema(op.body)}},
            }
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": _REASONS.get(op.status, "OK")}
        if op.response is not None:
            ok["content"] = {op.response_type: {"schema": components.schema(op.response)}}
            for media_type, schema in op.alternatives.items():
                ok["content"][media_type] = {"schema": components.schema(schema)}
        responses[str(op.status)] = ok
        errors = set(op.errors)
        if op.body is not None or op.query:
            errors.add(400)
        if op.auth:
            errors.add(401)
        if _path_params(op.path):
            errors.add(404)
        for status in sorted(errors):
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        for status, schema in op.extra_responses.items():
            responses[str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": components.schema(schema)}},
            }
        item["responses"] = responses
        if op.auth:
            item["security"] = [{"bearerAuth": []}]
        elif op.optional_auth:
            item["security"] = [{}, {"bearerAuth": []}]
        else:
            item["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tutti REST API",
            "version": "0.1.0",
            "description": (
                "Real-time collaborative practice server: accounts, the piece library, saved "
                "sessions, the synced practice logbook. Times are ISO 8601; errors are "
                '`{"error": {"code", "message"}}`. The Socket.IO protocol is in the README.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(op: Op) -> str:
    words = [p.strip("{}").replace(".", "_").replace("-", "_") for p in op.path.split("/") if p]
    if words[:1] == ["api"]:
        words = words[1:]
    return "_".join([op.method.lower(), *words])


# --------------------------------------------------------------------------- serving


@functools.cache
def document() -> bytes:
    """The document as JSON bytes, built once per process (it does not change)."""
    return orjson.dumps(build())


async def openapi_handler(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the document."""
    return web.Response(body=document(), content_type="application/json")


def install(app: web.Application) -> None:
    """Add ``GET /api/openapi.json`` to ``app``."""
    app.router.add_get("/api/openapi.json", openapi_handler)
