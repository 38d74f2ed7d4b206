"""REST routes of accounts: guest login, magic-link login, refresh-token rotation, logout,
who am I.

==========================  ==================================================
request                     answer
==========================  ==================================================
``POST /api/auth/guest``    ``{"display_name"}`` (1–50 characters) → ``201
                            {"access_token", "user": {"id", "display_name"}}``
``POST /api/auth/login``    ``{"email"}`` (+ optional ``Authorization: Bearer
                            <guest access token>``: that guest's data moves to
                            the account on verification) → ``202 {"sent":
                            true, "email", "expires_in"}`` (s); the link
                            ``PUBLIC_URL/#login=TOKEN`` goes by mail (SMTP, or
                            ``DATA_DIR/outbox`` and the log: :mod:`server.services.mailer`)
``POST /api/auth/verify``   ``{"token", "device_id"?}`` → ``200`` tokens (below)
                            and ``"merged"`` (rows moved from the guest, or null)
``POST /api/auth/refresh``  ``{"refresh_token"}`` → ``200`` tokens (a new pair;
                            the old refresh token is spent)
``POST /api/auth/logout``   ``{"refresh_token"}`` → ``204``; every token of that
                            login (rotation family) is revoked
``GET /api/auth/me``        ``Authorization: Bearer <access token>`` → ``200
                            {"id", "display_name", "email", "is_guest"}``
==========================  ==================================================

Tokens: ``{"access_token": JWT, "refresh_token": str, "token_type": "bearer",
"expires_in": s, "user": {"id", "display_name", "email", "is_guest"}}``.

Errors are ``{"error": {"code", "message"}}``: 400 for a bad body
(``invalid_json``, ``wrong_type``, ``missing_field``, ``unknown_field``,
``invalid_value``, ``invalid_email``); 401 ``invalid_link``, ``link_used``,
``link_expired``, ``invalid_refresh_token``, ``refresh_reused``,
``refresh_revoked``, ``refresh_expired``, ``missing_token``,
``invalid_token``, ``token_expired``, ``unknown_user``; 403
``account_deleted`` (login, verify or refresh for a deactivated account, see
:mod:`server.services.privacy`); 409 ``guest_in_room``; 429 ``too_many_links``; 503
``mail_failed``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms.errors import RoomError
from server.appkeys import MANAGER, SECRET, SESSIONMAKER, SETTINGS, SIO
from server.db import repository
from server.rest.apidoc import Op, Out
from server.rest.common import error, json_response
from server.rest.common import json_body as _json_body
from server.services import accounts, login_links, refresh_tokens
from server.services.accounts import AccountError, UserInfo
from server.services.auth import TokenError, bearer_token, issue_token, verify_token
from server.services.mailer import Mailer, MailError
from server.services.schemas import GuestIn, Id, parse

if TYPE_CHECKING:
    from server.realtime.room_service import RoomService as RoomManager

log = logging.getLogger("tutti.accounts")

routes = web.RouteTableDef()

TOKEN_MAX = 512
"""Longest link or refresh token accepted in a body (issued ones have 43 characters)."""


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class LoginIn(_Body):
    email: str = Field(min_length=1, max_length=accounts.EMAIL_MAX)


class VerifyIn(_Body):
    token: str = Field(min_length=1, max_length=TOKEN_MAX)
    device_id: Id | None = None


class RefreshIn(_Body):
    refresh_token: str = Field(min_length=1, max_length=TOKEN_MAX)


async def _body(request: web.Request, model: type[_Body]) -> Any:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise error(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    try:
        return parse(model, data)
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None


def _claims(request: web.Request) -> dict[str, Any]:
    token = bearer_token(request.headers.get("Authorization"))
    try:
        return verify_token(request.app[SECRET], token)
    except TokenError as exc:
        raise error(401, exc.code, exc.message) from None


def _tokens(request: web.Request, user: UserInfo, refresh_token: str) -> dict[str, Any]:
    ttl_s = request.app[SETTINGS].access_token_ttl_s
    access = issue_token(
        request.app[SECRET],
        user_id=user.id,
        display_name=user.display_name,
        guest=user.is_guest,
        ttl_s=ttl_s,
    )
    return {
        "access_token": access,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": ttl_s,
        "user": user.to_dict(),
    }


def in_unfinished_room(manager: RoomManager, user_id: str) -> bool:
    """Whether ``user_id`` hosts, is in, or played in a room of this process not yet finished.

    Such a room saves a practice log for the user when it finishes, so the
    user row must still exist then.
    """
    return any(
        room.finished is None
        and (room.host == user_id or user_id in room.members or room.live_result(user_id))
        for room in manager.rooms.values()
    )


@routes.post("/api/auth/guest")
async def guest_login(request: web.Request) -> web.Response:
    """``{"display_name"}`` → ``{"access_token", "user": {"id", "display_name"}}``."""
    try:
        body = parse(GuestIn, await _json_body(request))
    except RoomError as exc:
        raise error(400, exc.code, exc.message) from None
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER].begin() as db:
        user = await repository.create_guest(db, body.display_name)
        user_id, name = user.id, user.display_name
    token = issue_token(
        request.app[SECRET],
        user_id=user_id,
        display_name=name,
        guest=True,
        ttl_s=settings.token_ttl_s,
    )
    return json_response(
        {"access_token": token, "user": {"id": user_id, "display_name": name}}, status=201
    )


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    """Send a login link to ``email``; see the module docstring."""
    body = await _body(request, LoginIn)
    guest_id = None
    if request.headers.get("Authorization") is not None:
        claims = _claims(request)
        if claims.get("guest"):
            guest_id = claims["sub"]
    try:
        email = accounts.normalise_email(body.email)
    except AccountError as exc:
        raise error(exc.status, exc.code, exc.message) from None
    settings = request.app[SETTINGS]
    try:
        token = await login_links.create_login_link(
            request.app[SESSIONMAKER],
            email,
            ttl_s=settings.login_link_ttl_s,
            guest_user_id=guest_id,
        )
    except AccountError as exc:
        raise error(exc.status, exc.code, exc.message) from None
    link = f"{settings.resolved_public_url()}/#login={token}"
    try:
        await Mailer(settings).send_login_link(email, link, settings.login_link_ttl_s)
    except MailError as exc:
        log.error("login mail to %s failed: %s", email, exc.__cause__ or exc)
        await login_links.discard_login_link(request.app[SESSIONMAKER], token)
        raise error(503, "mail_failed", "the login mail could not be sent; try again") from None
    return json_response(
        {"sent": True, "email": email, "expires_in": settings.login_link_ttl_s}, 202
    )


@routes.post("/api/auth/verify")
async def verify(request: web.Request) -> web.Response:
    """Trade a login link's token for an access token and a refresh token."""
    body = await _body(request, VerifyIn)
    manager = request.app[MANAGER]
    try:
        result = await login_links.verify_login_link(
            request.app[SESSIONMAKER],
            body.token,
            refresh_ttl_s=request.app[SETTINGS].refresh_token_ttl_s,
            device_id=body.device_id,
            can_merge=lambda guest_id: not in_unfinished_room(manager, guest_id),
        )
    except AccountError as exc:
        raise error(exc.status, exc.code, exc.message) from None
    if result.guest_id is not None:
        log.info("guest %s merged into %s: %s", result.guest_id, result.user.id, result.merged)
        # The guest is gone: its devices reconnect with the account's token.
        sio = request.app[SIO]
        for sid, connection in list(manager.connections.items()):
            if connection.user_id == result.guest_id:
                await sio.disconnect(sid)
    return json_response(
        {**_tokens(request, result.user, result.refresh_token), "merged": result.merged}
    )


@routes.post("/api/auth/refresh")
async def refresh(request: web.Request) -> web.Response:
    """Rotate a refresh token: a new access token and a new refresh token."""
    body = await _body(request, RefreshIn)
    try:
        user, new_refresh = await refresh_tokens.rotate_refresh_token(
            request.app[SESSIONMAKER],
            body.refresh_token,
            ttl_s=request.app[SETTINGS].refresh_token_ttl_s,
        )
    except AccountError as exc:
        raise error(exc.status, exc.code, exc.message) from None
    return json_response(_tokens(request, user, new_refresh))


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """End a login: revoke the refresh token's whole family."""
    body = await _body(request, RefreshIn)
    try:
        await refresh_tokens.revoke_refresh_family(request.app[SESSIONMAKER], body.refresh_token)
    except AccountError as exc:
        raise error(exc.status, exc.code, exc.message) from None
    return web.Response(status=204)


@routes.get("/api/auth/me")
async def me(request: web.Request) -> web.Response:
    """The caller (account or guest) named by the Bearer access token."""
    claims = _claims(request)
    user = await accounts.get_user_info(request.app[SESSIONMAKER], claims["sub"])
    if user is None:
        raise error(401, "unknown_user", "the user of this token no longer exists")
    return json_response(user.to_dict())


# --------------------------------------------------------------------------- the document


class GuestUserOut(Out):
    id: str
    display_name: str


class GuestOut(Out):
    access_token: str
    user: GuestUserOut


class UserInfoOut(Out):
    id: str
    display_name: str
    email: str | None
    is_guest: bool


class LoginOut(Out):
    sent: Literal[True]
    email: str
    expires_in: int = Field(description="link lifetime, s")


class TokensOut(Out):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="access token lifetime, s")
    user: UserInfoOut


class VerifyOut(TokensOut):
    merged: dict[str, Any] | None


OPERATIONS = [
    Op("POST", "/api/auth/guest", "Log in as a guest", "accounts", GuestOut, 201, GuestIn,
       auth=False),
    Op("POST", "/api/auth/login", "Mail a login link", "accounts", LoginOut, 202, LoginIn,
       auth=False, optional_auth=True, errors=(401, 429, 503)),
    Op("POST", "/api/auth/verify", "Trade a login link for tokens", "accounts", VerifyOut,
       body=VerifyIn, auth=False, errors=(401, 409)),
    Op("POST", "/api/auth/refresh", "Rotate a refresh token", "accounts", TokensOut,
       body=RefreshIn, auth=False, errors=(401,)),
    Op("POST", "/api/auth/logout", "Revoke a login's refresh tokens", "accounts", None, 204,
       RefreshIn, auth=False, errors=(401,)),
    Op("GET", "/api/auth/me", "The caller", "accounts", UserInfoOut),
]  # fmt: skip
"""The document's operations of this module (:mod:`server.rest.apidoc`)."""
