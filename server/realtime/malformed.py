"""Malformed packets: dropped, logged once per connection at a rate limit, never a traceback.

A client that sends junk must not flood the log. :class:`MalformedLog` logs
a connection's first malformed packet as one WARNING line of
``tutti.transport`` (the reason, no traceback) and only counts the rest; at
most :attr:`MalformedLog.lines_per_minute` such lines a minute in the process
(the next line after a full minute says how many were left out).

Where packets are checked:

* Socket.IO packets (:class:`server.realtime.transport.TuttiServer`): an
  unknown packet type, an undecodable header or non-event payload
  (:class:`server.realtime.codec.MalformedPacket`), an event before the
  connect;
* Engine.IO websocket frames (:class:`CheckedWebSocket`): a text frame that
  is not an Engine.IO packet (types ``0``–``6``) closes the websocket — the
  stock code raised out of its read loop (an ERROR traceback per frame). It
  also yields to the event loop every :data:`YIELD_EVERY` messages, so a
  connection's buffered flood cannot run ahead of everything else;
* anything else that reaches python-engineio's or python-socketio's own
  handlers as a bad-input exception (``ValueError``, ``TypeError``,
  ``IndexError``, ``KeyError`` logged with a traceback, e.g. a junk polling
  payload): :class:`InputErrorFilter` turns the traceback into the same
  rate-limited line. Other exceptions keep their ERROR traceback: they are bugs.
"""

from __future__ import annotations

import asyncio
import logging
import time

from engineio.async_drivers import aiohttp as eio_aiohttp

log = logging.getLogger("tutti.transport")

ENGINEIO_PACKET_TYPES = frozenset("0123456")  # open close ping pong message upgrade noop
INPUT_ERRORS = (ValueError, TypeError, IndexError, KeyError, UnicodeError)
YIELD_EVERY = 8  # websocket messages read between two yields to the event loop


class MalformedLog:
    """Counts malformed packets per connection and logs a few (see module)."""

    lines_per_minute = 10

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}  # connection → malformed packets so far
        self._window_start = 0.0
        self._lines = 0
        self._left_out = 0

    def report(self, connection: str, reason: str) -> None:
        """One malformed packet from ``connection`` (a sid), dropped because ``reason``."""
        count = self.counts.get(connection, 0) + 1
        self.counts[connection] = count
        if count == 1:
            self.line(
                f"dropped a malformed packet from {connection}: {reason} "
                "(its further ones are not logged)"
            )

    def line(self, message: str) -> None:
        """Log ``message`` at WARNING if the minute's budget allows, else count it."""
        now = time.monotonic()
        if now - self._window_start >= 60.0:
            if self._left_out:
                message += f" ({self._left_out} more lines about malformed packets left out)"
            self._window_start, self._lines, self._left_out = now, 0, 0
        if self._lines >= self.lines_per_minute:
            self._left_out += 1
            return
        self._lines += 1
        log.warning("%s", message)

    def forget(self, connection: str) -> None:
        self.counts.pop(connection, None)


MALFORMED = MalformedLog()
"""The process's one :class:`MalformedLog` (one budget for every source)."""


class InputErrorFilter(logging.Filter):
    """On python-engineio's and python-socketio's loggers: a bad-input traceback
    becomes one :data:`MALFORMED` line (see module); everything else passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, INPUT_ERRORS):
            return True
        MALFORMED.line(f"{record.getMessage()}: {type(exc).__name__}: {exc}")
        return False


def quiet_library_loggers() -> None:
    """python-engineio's and python-socketio's loggers: ERROR and up, through our
    handlers only (left unset, each adds a stream handler of its own: every error
    twice), with :class:`InputErrorFilter`."""
    for name in ("engineio.server", "socketio.server"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
        if not any(isinstance(f, InputErrorFilter) for f in logger.filters):
            logger.addFilter(InputErrorFilter())


class CheckedWebSocket(eio_aiohttp.WebSocket):
    """python-engineio's aiohttp websocket, closing on a text frame that is no
    Engine.IO packet (logged through :data:`MALFORMED`)."""

    _received = 0

    async def wait(self):
        self._received += 1
        if self._received % YIELD_EVERY == 0:
            # Frames already buffered are read without suspending: a flood would run
            # thousands of messages (and spawn their event tasks) before anyone else runs,
            # before its refusals are even counted. A yield lets the rest catch up.
            await asyncio.sleep(0)
        session = getattr(self.handler, "__self__", None)  # the engine.io socket reading us
        if session is not None and session.closed:
            return None  # closed by the server (e.g. cut): read no more of it
        data = await super().wait()
        if isinstance(data, str) and (not data or data[0] not in ENGINEIO_PACKET_TYPES):
            request = self.environ.get("aiohttp.request")
            where = request.remote if request is not None else "?"
            MALFORMED.line(f"closing a websocket from {where}: a frame that is no Engine.IO packet")
            return None  # as if the client had closed: the read loop ends cleanly
        return data
