"""HTTP hardening as aiohttp middlewares: security headers, CORS, JSON 413s.

Every response gets (settings in :class:`server.config.Settings`):

* ``Content-Security-Policy`` (``content_security_policy``; by default only
  this origin's scripts, styles, workers and connections, ``data:`` images,
  ``blob:`` media, no plugins, ``frame-ancestors 'none'``). The browser client
  loads its scripts from ``/static`` and has no inline script, so it runs
  under it; Socket.IO websockets to the same origin are ``connect-src 'self'``
  (CSP Level 3 matches ``ws:``/``wss:`` of the same host).
* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for
  browsers without ``frame-ancestors``), ``Referrer-Policy``
  (``referrer_policy``), ``Permissions-Policy`` (``permissions_policy``; Web
  MIDI allowed for this origin), ``Cross-Origin-Opener-Policy: same-origin``
  and, when ``hsts_max_age_s`` > 0 (serve over HTTPS only),
  ``Strict-Transport-Security``.

CORS (Fetch standard): ``cors_origins`` lists the origins whose pages may call
the REST API (``*``: any; empty: none but this one). A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin
answers 204 with the allowed methods and headers; an allowed origin's
request gets ``Access-Control-Allow-Origin`` (and ``Vary: Origin``); other
origins get no CORS headers, so their browsers withhold the answer. The same
list goes to Socket.IO's ``cors_allowed_origins`` (see
:func:`socketio_cors`).

Every response names the server ``Server: Tutti``, no library or version
(aiohttp's default is ``Python/3.x aiohttp/3.x``): :func:`server_header`.

A body beyond aiohttp's ``client_max_size`` answers ``413`` with
``{"error": {"code": "payload_too_large", …}}`` instead of aiohttp's text.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from server.config import Settings
from server.services.limits_counter import record_rejection

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_S = "600"


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers every response carries."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": settings.referrer_policy,
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if settings.content_security_policy:
        headers["Content-Security-Policy"] = settings.content_security_policy
    if settings.permissions_policy:
        headers["Permissions-Policy"] = settings.permissions_policy
    if settings.hsts_max_age_s > 0:
        headers["Strict-Transport-Security"] = f"max-age={settings.hsts_max_age_s}"
    return {k: v for k, v in headers.items() if v}


def socketio_cors(settings: Settings) -> list[str] | str | None:
    """Socket.IO's ``cors_allowed_origins``: ``None`` is same origin only."""
    return settings.resolved_cors_origins()


def _allowed(origin: str | None, allowed: list[str] | str | None) -> bool:
    if not origin or allowed is None:
        return False
    return allowed == "*" or origin.rstrip("/") in allowed


def headers_middleware(settings: Settings):
    """Security headers and CORS on every answer, errors included."""
    fixed = security_headers(settings)
    allowed = settings.resolved_cors_origins()

    @web.middleware
    async def secure(request: web.Request, handler):
        origin = request.headers.get("Origin")
        cors = _allowed(origin, allowed)
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
            and request.path.startswith("/api/")
        ):
            response: web.StreamResponse = web.Response(status=204 if cors else 403)
            if cors:
                response.headers.update(
                    {
                        "Access-Control-Allow-Methods": CORS_METHODS,
                        "Access-Control-Allow-Headers": CORS_HEADERS,
                        "Access-Control-Max-Age": CORS_MAX_AGE_S,
                    }
                )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
        if request.path.startswith("/socket.io"):
            # engine.io sets its own CORS headers; the transport's refusals made before it
            # (429 over the per-address cap, 413 oversized POST) get ours.
            if cors and "Access-Control-Allow-Origin" not in response.headers:
                response.headers["Access-Control-Allow-Origin"] = "*" if allowed == "*" else origin
                response.headers["Vary"] = "Origin"
            return _reraise(response)
        response.headers.update(fixed)
        if cors:
            response.headers["Access-Control-Allow-Origin"] = "*" if allowed == "*" else origin
            response.headers["Vary"] = "Origin"
        return _reraise(response)

    return secure


def _reraise(response: web.StreamResponse) -> web.StreamResponse:
    if isinstance(response, web.HTTPException):
        raise response
    return response


SERVER = "Tutti"


async def server_header(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: ``Server: Tutti`` on every response (static files,
    HTTP errors and the Socket.IO transport included)."""
    response.headers["Server"] = SERVER


@web.middleware
async def json_too_large(request: web.Request, handler):
    """aiohttp's 413 (body over ``client_max_size``) as Tutti's JSON error."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        record_rejection("payload")
        body = orjson.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"the request body is too large: {exc.text}",
                }
            }
        )
        return web.Response(body=body, status=413, content_type="application/json")
