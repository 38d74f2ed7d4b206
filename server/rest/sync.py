"""REST routes of the sync protocol (the same semantics as :mod:`server.realtime.sync_events`).

* ``POST /api/sync/push`` body ``{"client_id", "mutations"}`` →
  ``200 {"last_mutation_id", "version"}`` (+ ``"error": {"code", "message",
  "mutation_id"}`` when the push stopped early — still 200: the mutations
  before it were applied, and the body says how far; see :mod:`server.services.sync`).
  A refused envelope is ``400 {"error": {"code", "message"}}`` and changes
  nothing.
* ``GET /api/sync/pull?cursor=N&limit=M`` → ``200 {"changes", "cursor",
  "has_more"}``; ``cursor`` an integer 0–:data:`server.services.sync_messages.MAX_MUTATION_ID`
  (default 0), ``limit`` 1–1000 (default 500); else ``400 wrong_type`` /
  ``out_of_range``.

Both need ``Authorization: Bearer TOKEN`` (guest tokens too).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from rooms.errors import RoomError
from server.appkeys import SYNC
from server.rest.apidoc import Op, Out, model_query
from server.rest.common import caller as _caller
from server.rest.common import error, json_response
from server.rest.common import json_body as _json_body
from server.services import sync_messages
from server.services.schemas import QueryInt, QueryModel, parse_query
from server.services.sync_messages import parse_push

routes = web.RouteTableDef()


class PullQuery(QueryModel):
    """``?cursor=&limit=`` of a pull (the bounds of
    :class:`server.services.sync_messages.PullIn`)."""

    cursor: QueryInt = Field(default=0, ge=0, le=sync_messages.MAX_MUTATION_ID)
    limit: QueryInt = Field(default=sync_messages.PULL_LIMIT, ge=1, le=sync_messages.PULL_LIMIT_MAX)


@routes.post("/api/sync/push")
async def push(request: web.Request) -> web.Response:
    user_id = _caller(request)["sub"]
    try:
        body = parse_push(await _json_body(request))
        answer = await request.app[SYNC].push(user_id, body)
    except RoomError as exc:
        raise error(401 if exc.code == "unknown_user" else 400, exc.code, exc.message) from None
    return json_response(answer)


@routes.get("/api/sync/pull")
async def pull(request: web.Request) -> web.Response:
    user_id = _caller(request)["sub"]
    try:
        msg = parse_query(PullQuery, request.rel_url.query)
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None
    return json_response(await request.app[SYNC].pull(user_id, msg.cursor, msg.limit))


# --------------------------------------------------------------------------- the document


class PushErrorOut(Out):
    code: str
    message: str
    mutation_id: int | None = None


class PushOut(Out):
    last_mutation_id: int = Field(ge=0)
    version: int = Field(ge=0)
    error: PushErrorOut | None = None


class ChangeOut(Out):
    entity: str
    id: str
    version: int
    deleted: bool
    fields: dict[str, Any] | None = None


class PullOut(Out):
    changes: list[ChangeOut]
    cursor: int = Field(ge=0)
    has_more: bool


class PushBody(sync_messages.PushIn):
    """The push envelope with its mutations described (each checked when applied)."""

    mutations: list[sync_messages.MutationIn] = Field(max_length=sync_messages.MAX_MUTATIONS)


OPERATIONS = [
    Op("POST", "/api/sync/push", "Push mutations", "sync", PushOut, body=PushBody),
    Op("GET", "/api/sync/pull", "Pull changes after a cursor", "sync", PullOut,
       query=model_query(PullQuery)),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
