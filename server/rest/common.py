"""What every REST module shares: JSON answers, JSON bodies, the caller, and the one error mapping.

Every error answer is ``{"error": {"code", "message"}}`` with the status of
:class:`rooms.errors.TuttiError` (:data:`rooms.errors.STATUS`). A handler may
raise a :class:`~rooms.errors.TuttiError` of any kind: :func:`errors_middleware`
answers it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from rooms.errors import TuttiError
from server.appkeys import SECRET
from server.db.engine import database_unavailable
from server.services.auth import TokenError, verify_token

log = logging.getLogger("tutti.rest")

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    414: "too_large",
    431: "too_large",
}
"""Codes of aiohttp's own HTTP errors (an unknown route or method, …); others ``http_<status>``."""


class JsonError(web.HTTPError):
    """An HTTP error of any status whose body is Tutti's JSON error document."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status  # read by Response.__init__
        text = orjson.dumps({"error": {"code": code, "message": message}}).decode()
        super().__init__(text=text, content_type="application/json", headers=headers)


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as a JSON answer (orjson)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error(status: int, code: str, message: str) -> web.HTTPException:
    """An HTTP error with Tutti's JSON error body, to ``raise``."""
    return JsonError(status, code, message)


def http_error(exc: TuttiError) -> web.HTTPException:
    """``exc`` as an HTTP error: its status (:data:`rooms.errors.STATUS`), code and message."""
    return JsonError(exc.status, exc.code, exc.message)


async def json_body(request: web.Request) -> Any:
    """The request's body parsed as JSON; ``400 invalid_json`` when it is not."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise error(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


async def read_limited(request: web.Request, limit: int, what: str = "a MIDI upload") -> bytes:
    """The request body, refused with ``413 too_large`` as soon as it exceeds ``limit`` bytes."""
    message = f"{what} may be at most {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise error(413, "too_large", message)
    data = bytearray()
    while chunk := await request.content.read(65536):
        data += chunk
        if len(data) > limit:
            raise error(413, "too_large", message)
    return bytes(data)


def caller(request: web.Request) -> dict:
    """The verified claims of the request's bearer token; ``401`` with the token's code."""
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    try:
        return verify_token(request.app[SECRET], token)
    except TokenError as exc:
        raise http_error(exc) from None


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every error as Tutti's JSON error body, whoever raised it.

    * a :class:`~rooms.errors.TuttiError` a handler raised: its status and code;
    * aiohttp's own HTTP errors (``404`` for an unknown route → ``not_found``,
      ``405`` for an unknown method → ``method_not_allowed``, keeping ``Allow``;
      :data:`HTTP_CODES`), which aiohttp answers in plain text;
    * the database away, locked (e.g. another process holds SQLite's write lock
      past ``busy_timeout``) or read-only: ``503 database_unavailable`` with
      ``Retry-After: 1``, one WARNING line (:func:`server.db.engine.database_unavailable`);
    * any other exception: logged, ``500 internal_error`` (nothing of it is told).
    """
    try:
        return await handler(request)
    except TuttiError as exc:
        raise http_error(exc) from None
    except (JsonError, web.HTTPRequestEntityTooLarge):
        raise  # already JSON; a body over client_max_size: security.json_too_large
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        code = HTTP_CODES.get(exc.status, f"http_{exc.status}")
        raise JsonError(exc.status, code, exc.reason or code, headers) from None
    except Exception as exc:
        if database_unavailable(exc):
            log.warning("%s %s: database unavailable (%s)", request.method, request.path, exc)
            raise JsonError(
                503,
                "database_unavailable",
                "the database is busy or away; try again shortly",
                {"Retry-After": "1"},
            ) from None
        log.exception("%s %s failed", request.method, request.path)
        raise JsonError(500, "internal_error", "server error") from None
