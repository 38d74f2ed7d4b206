"""Structured logs with correlation ids.

``--log-format json`` (the default of ``tutti serve``) writes one JSON
object per line to stderr::

    {"time": "2026-11-21T10:30:00.123Z", "level": "INFO", "logger": "tutti.rooms",
     "message": "room 3f2a created by U1 (duet)", "connection_id": "Xk3…"}

Keys: ``time`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``message``, and
when known ``request_id`` (the HTTP request being handled),
``connection_id`` (the Socket.IO connection whose event is being handled:
its sid) and ``exception`` (the formatted traceback). Access log lines
(logger ``aiohttp.access``) add ``method``, ``path``, ``status``,
``duration_ms`` and ``remote``. ``--log-format text`` writes the classic
``time LEVEL logger: message [request_id=…]`` lines for a person at a
terminal.

**Correlation ids** live in :mod:`contextvars`, so every log line written
while handling a request or an event carries them — also lines from the
tasks that handling starts (they copy the context):

* HTTP: :func:`request_id_middleware` takes the request's ``X-Request-ID``
  (1–128 characters of ``[A-Za-z0-9._:-]``; anything else is replaced) or
  makes one (32 hex digits), binds it, and every response echoes it in
  ``X-Request-ID``.
* Socket.IO: :func:`bind_socketio` binds the connection's sid around every
  event handler (connect, disconnect, every event) of the server. Such lines
  also carry the ``request_id`` of the HTTP request that carried the event
  (the WebSocket upgrade, or one long-polling request).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import socketio
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tutti_request_id", default=None
)
CONNECTION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tutti_connection_id", default=None
)
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
FORMATS = ("json", "text")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the keys).

    Fields passed with ``extra={...}`` are added as keys too.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        _add_ids(entry, record)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` plus the correlation ids in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids: dict[str, Any] = {}
        _add_ids(ids, record)
        if ids:
            first, _, rest = line.partition("\n")
            tags = " ".join(f"{k}={v}" for k, v in ids.items())
            line = f"{first} [{tags}]" + (f"\n{rest}" if rest else "")
        return line


def _add_ids(entry: dict[str, Any], record: logging.LogRecord) -> None:
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id is not None:
        entry["request_id"] = request_id
    connection_id = getattr(record, "connection_id", None) or CONNECTION_ID.get()
    if connection_id is not None:
        entry["connection_id"] = connection_id


def configure(level: str = "INFO", fmt: str = "json", stream=None) -> None:
    """Send every log record to ``stream`` (stderr) as ``fmt`` (``json`` or ``text``).

    Raises ``ValueError`` for another format. Python warnings are logged too.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.captureWarnings(True)


# -- HTTP ----------------------------------------------------------------------------------


def request_id_of(request: web.Request) -> str:
    """The correlation id of ``request``: its valid ``X-Request-ID`` or a new one."""
    rid = request.get("request_id")
    if rid is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        request["request_id"] = rid
    return rid


@web.middleware
async def request_id_middleware(request: web.Request, handler) -> web.StreamResponse:
    token = REQUEST_ID.set(request_id_of(request))
    try:
        return await handler(request)
    finally:
        REQUEST_ID.reset(token)


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # on_response_prepare sees every response: handlers', HTTP errors', static files'.
    response.headers[REQUEST_ID_HEADER] = request_id_of(request)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log as structured fields (``method``, ``path``, ``status``, …)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        extra = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000.0, 3),
            "remote": request.remote,
        }
        if request.get("request_id") is not None:
            extra["request_id"] = request["request_id"]
        self.logger.info(
            "%s %s %d %.1f ms",
            request.method,
            request.path,
            response.status,
            time * 1000.0,
            extra=extra,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


# -- Socket.IO -----------------------------------------------------------------------------


def bind_socketio(sio: socketio.AsyncServer) -> None:
    """Bind the connection's sid as ``connection_id`` around every event handler of ``sio``.

    Wraps the server's handler dispatch (``AsyncServer._trigger_event``, whose
    first argument after the namespace is the sid for every server event), so
    handlers registered before or after this call are all covered.
    """
    trigger = sio._trigger_event

    async def trigger_with_id(event: str, namespace: str, *args: Any) -> Any:
        sid = args[0] if args and isinstance(args[0], str) else None
        token = CONNECTION_ID.set(sid)
        try:
            return await trigger(event, namespace, *args)
        finally:
            CONNECTION_ID.reset(token)

    sio._trigger_event = trigger_with_id


def install(app: web.Application, sio: socketio.AsyncServer) -> None:
    """Correlation ids for ``app``'s requests and ``sio``'s connections."""
    app.middlewares.append(request_id_middleware)
    app.on_response_prepare.append(_echo_request_id)
    bind_socketio(sio)
