"""The caller's profile and preferences: ``/api/users/me`` and ``/api/users/me/preferences``.

=============================================  ===========================================
route                                          does
=============================================  ===========================================
``GET /api/users/me``                          ``{"id", "display_name", "is_guest", "email",
                                               "created_at"}``
``PUT /api/users/me``                          ``{"display_name"}`` (1–50 characters) → the
                                               profile
``DELETE /api/users/me``                       deactivates the account, purged later
                                               (:mod:`server.services.privacy`) → 204
``GET /api/users/me/preferences``              ``{"preferences": {...}, "version"}``
``PUT|PATCH /api/users/me/preferences``        merges the body's keys (``null`` removes a
                                               key) → the same
``DELETE /api/users/me/preferences``           clears them → 204
=============================================  ===========================================

Preferences are a free JSON object synced like the logbook (entity
``preferences`` of :mod:`server.services.logbook`): at most 100 keys and
:data:`server.services.logbook.MAX_PREFERENCES_BYTES` bytes of JSON, nested at
most :data:`server.services.schemas.MAX_JSON_DEPTH` levels (``400 too_deep``).
Every route needs ``Authorization: Bearer TOKEN``. Errors: ``400`` validation
codes and ``too_deep``, ``413 too_large`` (over
:data:`server.services.schemas.MAX_JSON_BYTES`), ``401``.
(``/api/users/me/time-zone`` is in :mod:`server.rest.progress`,
``/api/users/me/data`` in :mod:`server.rest.privacy`.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from rooms.errors import RoomError
from server.appkeys import MANAGER, PRIVACY_BUS, SESSIONMAKER, SYNC
from server.db import repository
from server.db.models import User, utcnow
from server.rest.apidoc import Op, Out
from server.rest.common import json_response
from server.rest.logbook import body_object, caller_id, handler
from server.services.logbook import ENTITIES, PREFERENCES_ID
from server.services.privacy import deactivate
from server.services.schemas import DisplayName, _Strict, check_json, parse

routes = web.RouteTableDef()


class ProfileIn(_Strict):
    display_name: DisplayName


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
    user_id = caller_id(request)
    async with request.app[SESSIONMAKER]() as db:
        user = await repository.get_user(db, user_id)
        if user is None:
            raise RoomError("unknown_user", "this token's user no longer exists")
        return json_response(_profile(user))


@routes.put("/api/users/me")
@handler
async def put_me(request: web.Request) -> web.Response:
    """``{"display_name"}`` (1–50 characters). Tokens issued before keep the old name."""
    user_id = caller_id(request)
    body = parse(ProfileIn, await body_object(request))
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
    user_id = caller_id(request)
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
    return json_response(await _preferences(request, caller_id(request)))


@routes.put("/api/users/me/preferences")
@routes.patch("/api/users/me/preferences")
@handler
async def put_preferences(request: web.Request) -> web.Response:
    """Merge the body's keys into the preferences (``null`` removes a key)."""
    user_id = caller_id(request)
    fields = check_json(await body_object(request))  # too_deep, too_large
    written = await request.app[SYNC].write(user_id, "preferences", "put", PREFERENCES_ID, fields)
    return json_response({"preferences": dict(written.row.data), "version": written.row.version})


@routes.delete("/api/users/me/preferences")
@handler
async def delete_preferences(request: web.Request) -> web.Response:
    user_id = caller_id(request)
    await request.app[SYNC].write(user_id, "preferences", "delete", PREFERENCES_ID, {})
    return web.Response(status=204)


# --------------------------------------------------------------------------- the document


class ProfileOut(Out):
    id: str
    display_name: str
    is_guest: bool
    email: str | None
    created_at: str


class PreferencesOut(Out):
    preferences: dict[str, Any]
    version: int = Field(ge=0)


PREFERENCES_BODY = {"type": "object", "maxProperties": 100}

OPERATIONS = [
    Op("GET", "/api/users/me", "The caller's profile", "users", ProfileOut),
    Op("PUT", "/api/users/me", "Change the display name", "users", ProfileOut, body=ProfileIn),
    Op("DELETE", "/api/users/me", "Deactivate the account now; purged after 30 days", "users",
       None, 204),
    Op("GET", "/api/users/me/preferences", "The preferences", "users", PreferencesOut),
    Op("PUT", "/api/users/me/preferences", "Merge keys into the preferences", "users",
       PreferencesOut, body=PREFERENCES_BODY),
    Op("PATCH", "/api/users/me/preferences", "Merge keys into the preferences", "users",
       PreferencesOut, body=PREFERENCES_BODY),
    Op("DELETE", "/api/users/me/preferences", "Clear the preferences", "users", None, 204),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
