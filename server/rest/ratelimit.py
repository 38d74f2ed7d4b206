"""The REST rate-limit middleware: ``429`` with ``Retry-After`` over a limit.

Scopes, keys and the limiter are :mod:`server.services.limits`.
"""

from __future__ import annotations

import logging
import math

import orjson
from aiohttp import web

from server.config import Settings
from server.realtime.transport import client_ip  # one rule for REST and Socket.IO
from server.services.auth import TokenError, bearer_token, verify_token
from server.services.limits import EXEMPT_PATHS, RateLimiter, pseudonym

log = logging.getLogger("tutti.limits")

__all__ = ["RateLimiter", "client_ip", "rate_limited", "rest_middleware"]


def rate_limited(retry_after_s: float, what: str) -> web.Response:
    """The 429 answer: ``Retry-After`` in whole seconds (RFC 9110 §10.2.3), at least 1."""
    seconds = max(1, math.ceil(retry_after_s))
    body = {
        "error": {
            "code": "rate_limited",
            "message": f"too many {what}; try again in {seconds} s",
            "retry_after": round(retry_after_s, 3),
        }
    }
    return web.Response(
        body=orjson.dumps(body),
        status=429,
        content_type="application/json",
        headers={"Retry-After": str(seconds)},
    )


def rest_middleware(limiter: RateLimiter, settings: Settings, secret: str):
    """An aiohttp middleware applying ``rest_ip`` then ``rest_user`` to ``/api/`` requests.

    The user is the ``sub`` of a valid bearer token (an invalid token is left
    to the handler, which answers 401); the claims are kept in
    ``request["claims"]``.
    """

    @web.middleware
    async def limit(request: web.Request, handler):
        if not request.path.startswith("/api/") or request.path in EXEMPT_PATHS:
            return await handler(request)
        ip = client_ip(request, settings.trust_forwarded_for)
        wait = await limiter.hit("rest_ip", ip)
        if wait is not None:
            return rate_limited(wait, "requests from this address")
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            try:
                claims = verify_token(secret, token)
            except TokenError:
                claims = None
            if claims is not None:
                request["claims"] = claims
                wait = await limiter.hit("rest_user", pseudonym(secret, claims["sub"]))
                if wait is not None:
                    return rate_limited(wait, "requests from this user")
        return await handler(request)

    return limit
