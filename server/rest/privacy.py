"""REST for privacy: the data export, and refusing deactivated accounts' tokens.

``GET /api/users/me/data`` (Bearer token) answers a ZIP archive
(``application/zip``, ``Content-Disposition: attachment``) holding
``data.json`` (see :func:`server.services.privacy.export_user`) and the MIDI files it
names (``recordings/<session id>.mid``, ``pieces/<piece id>.mid``).
``?format=json`` answers ``data.json`` alone, each file named by a URL
instead (``recording_url``: ``/api/sessions/{id}/recording.mid``,
``file_url``: ``/api/pieces/{id}/midi``). Errors: 401 (token), 400
``invalid_value`` (another ``format``).

``DELETE /api/users/me`` (in :mod:`server.rest.users`) calls
:func:`server.services.privacy.deactivate`; afterwards :func:`deactivated_middleware`
answers every ``/api/`` request with that user's token ``401
account_deleted``.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from server.appkeys import PROGRESS_REFRESHER, SECRET, SESSIONMAKER
from server.rest.apidoc import Op, Query
from server.rest.common import caller as _caller
from server.rest.common import error, json_response
from server.services import progress_refresh
from server.services.auth import TokenError, bearer_token, verify_token
from server.services.privacy import export_user, export_zip, is_deactivated

routes = web.RouteTableDef()


@routes.get("/api/users/me/data")
async def export_data(request: web.Request) -> web.Response:
    """Everything stored about the caller: a ZIP (default) or JSON (``?format=json``)."""
    user_id = _caller(request)["sub"]
    kind = request.rel_url.query.get("format", "zip")
    if kind not in ("zip", "json"):
        raise error(400, "invalid_value", "format must be zip or json")
    await progress_refresh.settle(
        request.app.get(PROGRESS_REFRESHER), user_id
    )  # progress of the latest writes
    async with request.app[SESSIONMAKER]() as db:
        try:
            data, files = await export_user(db, user_id)
        except LookupError:
            raise error(401, "unknown_user", "this token's user no longer exists") from None
    if kind == "json":
        for session in data["sessions"]:
            session["recording_url"] = (
                f"/api/sessions/{session['id']}/recording.mid" if session["recording"] else None
            )
        for piece in data["uploaded_pieces"]:
            piece["file_url"] = f"/api/pieces/{piece['id']}/midi"
        return json_response(data)
    return web.Response(
        body=export_zip(data, files),
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="tutti-data-{user_id}.zip"'},
    )


@web.middleware
async def deactivated_middleware(request: web.Request, handler):
    """``401 account_deleted`` for any ``/api/`` request bearing a deactivated user's token."""
    if request.path.startswith("/api/"):
        claims = request.get("claims")
        if claims is None:
            token = bearer_token(request.headers.get("Authorization"))
            if token is not None:
                try:
                    claims = verify_token(request.app[SECRET], token)
                except TokenError:
                    claims = None  # the handler answers 401 with the reason
        if claims is not None and await is_deactivated(request.app[SESSIONMAKER], claims["sub"]):
            body = orjson.dumps(
                {"error": {"code": "account_deleted", "message": "this account was deleted"}}
            )
            return web.Response(body=body, status=401, content_type="application/json")
    return await handler(request)


# --------------------------------------------------------------------------- the document

OPERATIONS = [
    Op("GET", "/api/users/me/data", "Everything stored about the caller (ZIP, or JSON)",
       "users", {"type": "string", "format": "binary"}, response_type="application/zip",
       alternatives={"application/json": {"type": "object"}},
       query=(Query("format", schema={"type": "string", "enum": ["zip", "json"],
                                      "default": "zip"}),)),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
