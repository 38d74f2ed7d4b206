"""Access tokens: HS256 JWTs (RFC 7519) signed with the server's secret key, via pyjwt.

Claims: ``sub`` (user id), ``name`` (display name), ``guest`` (true for a
guest, false for an account), ``type`` (``"access"``), ``iat`` and ``exp``
(Unix epoch seconds). Guest tokens live ``token_ttl_s`` (7 days by default)
and cannot be refreshed; account tokens live ``access_token_ttl_s`` (15
minutes) and are renewed with a refresh token (see :mod:`server.services.accounts`).
"""

from __future__ import annotations

import time

import jwt

from rooms.errors import TuttiError

ALGORITHM = "HS256"


class TokenError(TuttiError):
    """The token is missing, malformed, badly signed or expired; ``code`` says which (HTTP 401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 401)


def issue_token(
    secret: str,
    *,
    user_id: str,
    display_name: str,
    guest: bool,
    ttl_s: int,
    now: float | None = None,
) -> str:
    """Sign an access token for ``user_id`` valid for ``ttl_s`` seconds."""
    iat = int(now if now is not None else time.time())
    claims = {
        "sub": user_id,
        "name": display_name,
        "guest": guest,
        "type": "access",
        "iat": iat,
        "exp": iat + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verify_token(secret: str, token: object) -> dict:
    """Return the claims of a valid access token.

    Raises :class:`TokenError` with code ``missing_token``, ``token_expired``
    or ``invalid_token``.
    """
    if not token or not isinstance(token, str):
        raise TokenError("missing_token", "an access token is required (auth.token)")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired", "the access token has expired; get a new one") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("invalid_token", f"the access token is not valid: {exc}") from exc
    if claims.get("type") != "access":
        raise TokenError("invalid_token", "not an access token")
    return claims
