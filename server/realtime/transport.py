"""The transport guard: what a connection may send below the events, checked before buffering.

:class:`TuttiServer` is python-socketio's ``AsyncServer`` with these checks on
every Engine.IO message, before python-socketio decodes or keeps anything:

* **No binary packets.** Tutti has no binary events. A Socket.IO packet of
  type 5 or 6 (``BINARY_EVENT``, ``BINARY_ACK``: ``451-["clock",
  {"_placeholder": true, "num": 0}]`` followed by binary frames) or a binary
  frame closes the connection at once (``binary_not_supported``): the stock
  server would keep the announced attachments (up to 10⁹, each up to the
  message cap) in memory until the last arrives.
* **A handshake timeout.** An Engine.IO session that has not completed a
  Socket.IO connect with a valid token (``on_connect`` accepted it) within
  ``handshake_timeout_s`` (10 s) is closed, logged at INFO: sessions opened
  and left idle no longer stay forever. A client that leaves the namespace
  (``41``) and keeps the session has that long again to connect.
* **A cap per client address.** At most ``max_connections_per_ip``
  Engine.IO sessions (authenticated or not) from one address (behind a
  trusted proxy, the first ``X-Forwarded-For`` hop); the next new session
  gets ``429 {"error": {"code": "too_many_connections", …}}`` before
  Engine.IO sees it (:func:`transport_middleware`).
* **Polling requests answer.** A polling POST over the message cap gets
  ``413 payload_too_large`` and its session is closed; a request on a closed
  or unknown session ``400 unknown_session`` (:func:`transport_middleware`).
* **Malformed packets** (an unknown type, a header or payload that does not
  decode, an event before the connect) are dropped, logged once per
  connection at a rate limit (:mod:`server.realtime.malformed`), and count as
  refusals.
* **Refusals** (over a rate limit, :mod:`server.realtime.guard`, or a
  malformed packet) are counted per connection (:meth:`TuttiServer.count_refusal`);
  past ``max_refusals`` the connection is closed (``too_many_refusals``).

Closing for what a connection sent (:meth:`TuttiServer.cut`) logs a WARNING
with the reason, sends ``connection:closed {"code", "message"}`` to a
connection that passed the handshake, then closes the Engine.IO session
(:meth:`TuttiServer.close_transport`): what it sends afterwards is dropped,
and its websocket is read no further
(:class:`server.realtime.malformed.CheckedWebSocket`, under
:class:`server.realtime.fastpath.DirectWebSocket`).

Hooks: python-socketio 5's ``AsyncServer._handle_eio_connect``,
``_handle_eio_message`` and ``_handle_eio_disconnect`` (the handlers it
registers with python-engineio); each behaviour here has a test through a
real server (``tests/e2e/test_transport.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import orjson
import socketio
from aiohttp import web

from server.realtime.codec import MalformedPacket
from server.realtime.fastpath import DirectEngineIO, DirectWebSocket, InlineEvents
from server.realtime.malformed import (
    INPUT_ERRORS,
    MALFORMED,
    quiet_library_loggers,
)
from server.services.limits import RateLimiter
from server.services.limits_counter import record_rejection

log = logging.getLogger("tutti.transport")

BINARY_TYPES = ("5", "6")  # Socket.IO BINARY_EVENT, BINARY_ACK
CLIENT_TYPES = ("0", "1", "2", "3")  # CONNECT, DISCONNECT, EVENT, ACK: all a client may send
EVENT_TYPES = ("2", "3")


def client_ip(request: web.BaseRequest, trust_forwarded_for: bool) -> str:
    """The client's address; behind a trusted proxy the first ``X-Forwarded-For`` hop."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"


def json_error(status: int, code: str, message: str) -> web.Response:
    """``{"error": {"code", "message"}}`` with ``status``."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(body=body, status=status, content_type="application/json")


class TuttiServer(InlineEvents, socketio.AsyncServer):
    """``socketio.AsyncServer`` with the transport checks of this module and the note
    path's shortcuts (:mod:`server.realtime.fastpath`).

    ``limiter`` counts refusals (its ``refusals`` scope; ``None``: never
    closed for them). ``handshake_timeout_s`` (0: none),
    ``max_connections_per_ip`` (0: no cap) and ``trust_forwarded_for`` are
    :class:`server.config.Settings`'s; the rest goes to ``socketio.AsyncServer``.
    """

    def __init__(
        self,
        *,
        limiter: RateLimiter | None = None,
        handshake_timeout_s: float = 0.0,
        max_connections_per_ip: int = 0,
        trust_forwarded_for: bool = False,
        **kwargs: Any,
    ) -> None:
        quiet_library_loggers()  # before python-engineio adds a handler of its own
        super().__init__(**kwargs)
        # A copy: python-engineio's table of its aiohttp driver is shared by every server.
        self.eio._async = {**self.eio._async, "websocket": DirectWebSocket}
        self.limiter = limiter
        self.handshake_timeout_s = handshake_timeout_s
        self.max_connections_per_ip = max_connections_per_ip
        self.trust_forwarded_for = trust_forwarded_for
        self._cut: set[str] = set()  # eio sids closed for what they sent
        self._address: dict[str, str] = {}  # eio sid → client address
        self._per_address: Counter[str] = Counter()
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task] = set()  # strong references to close tasks

    def _engineio_server_class(self):
        return DirectEngineIO  # writes to an idle websocket directly (realtime/fastpath.py)

    # -- addresses and the handshake ------------------------------------------------------

    def address_full(self, address: str) -> bool:
        """Whether ``address`` has ``max_connections_per_ip`` sessions open already."""
        cap = self.max_connections_per_ip
        return cap > 0 and self._per_address[address] >= cap

    async def _handle_eio_connect(self, eio_sid: str, environ: dict) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        request = environ.get("aiohttp.request")
        address = client_ip(request, self.trust_forwarded_for) if request else "unknown"
        self._address[eio_sid] = address
        self._per_address[address] += 1
        if self.handshake_timeout_s > 0:
            self._arm_deadline(eio_sid)

    def _arm_deadline(self, eio_sid: str) -> None:
        loop = asyncio.get_running_loop()
        self._deadlines[eio_sid] = loop.call_later(
            self.handshake_timeout_s, self._handshake_due, eio_sid
        )

    def _handshake_due(self, eio_sid: str) -> None:
        self._deadlines.pop(eio_sid, None)
        if self._authenticated(eio_sid):
            return
        log.info(
            "closing connection %s: no Socket.IO connect with a valid token within %.0f s",
            eio_sid,
            self.handshake_timeout_s,
        )
        task = asyncio.ensure_future(self.close_transport(eio_sid))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid in self._cut or eio_sid not in self.environ:
            return  # closing, or gone: read and dropped
        if not isinstance(data, str) or data[:1] in BINARY_TYPES:
            await self.cut(
                eio_sid,
                "binary_not_supported",
                "Tutti has no binary events: binary packets and attachments are refused",
            )
            return
        kind = data[:1]
        if kind not in CLIENT_TYPES:
            await self._malformed(eio_sid, f"no Socket.IO packet type a client sends ({kind!r})")
            return
        if kind in EVENT_TYPES and not self._authenticated(eio_sid):
            await self._malformed(eio_sid, "an event before the Socket.IO connect")
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (MalformedPacket, *INPUT_ERRORS) as exc:
            await self._malformed(eio_sid, str(exc))
        if kind == "1" and self.handshake_timeout_s > 0 and eio_sid not in self._deadlines:
            # Left the namespace but kept the session: it must connect again in time too.
            self._arm_deadline(eio_sid)

    def _authenticated(self, eio_sid: str) -> bool:
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        return sid is not None and self.manager.is_connected(sid, "/")

    async def _malformed(self, eio_sid: str, reason: str) -> None:
        MALFORMED.report(self.manager.sid_from_eio_sid(eio_sid, "/") or eio_sid, reason)
        await self.count_refusal(eio_sid)

    async def count_refusal(self, eio_sid: str | None) -> bool:
        """Count one refusal of ``eio_sid``; past ``max_refusals`` it is cut
        (``too_many_refusals``). ``True`` when the connection is being closed."""
        if eio_sid is None or self.limiter is None:
            return False
        if await self.limiter.hit("refusals", eio_sid) is None:
            return False
        await self.cut(eio_sid, "too_many_refusals", "this connection kept sending past its limits")
        return True

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self._cut.discard(eio_sid)
            MALFORMED.forget(sid or eio_sid)
            deadline = self._deadlines.pop(eio_sid, None)
            if deadline is not None:
                deadline.cancel()
            address = self._address.pop(eio_sid, None)
            if address is not None:
                self._per_address[address] -= 1
                if self._per_address[address] <= 0:
                    del self._per_address[address]

    async def cut(self, eio_sid: str | None, code: str, message: str) -> None:
        """Close ``eio_sid`` for what it sent: logged (WARNING), told, closed (see module)."""
        if eio_sid is None or eio_sid in self._cut or eio_sid not in self.eio.sockets:
            return  # already closing, or gone
        self._cut.add(eio_sid)
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        log.warning("closing connection %s (%s): %s", sid or eio_sid, code, message)
        if sid is not None and self.manager.is_connected(sid, "/"):
            try:
                await self.emit("connection:closed", {"code": code, "message": message}, to=sid)
            except Exception as exc:  # noqa: BLE001 - the socket may be gone already
                log.debug("telling %s why failed: %s", sid, exc)
        await self.close_transport(eio_sid)

    async def close_transport(self, eio_sid: str) -> None:
        """Close the Engine.IO session ``eio_sid`` without waiting for the client.

        ``engineio.AsyncServer.disconnect`` waits until the client has taken
        the CLOSE packet, forever for a polling client that never polls again;
        here the CLOSE packet is queued, the websocket writer is told to close
        the socket after it, and the session is forgotten (later requests on
        it get 400).
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        await socket.close(wait=False, abort=False, reason=self.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)  # the websocket writer closes the socket after CLOSE
        self.eio.sockets.pop(eio_sid, None)


def transport_middleware(sio: TuttiServer, path: str = "/socket.io"):
    """aiohttp middleware for ``path``, before python-engineio handles the request.

    * a new Engine.IO session over the per-address cap: ``429
      too_many_connections``;
    * a request on a session that is closed or unknown: ``400
      unknown_session`` (python-engineio answered 500 for a closed one);
    * a polling POST whose ``Content-Length`` is over the message cap
      (``max_http_buffer_size``): ``413 payload_too_large``, and the session
      is closed (a message of it is lost) — python-engineio waited for the
      client to take its CLOSE packet before answering, forever without a
      pending poll.
    """

    @web.middleware
    async def transport(request: web.Request, handler):
        if not request.path.startswith(path):
            return await handler(request)
        sid = request.query.get("sid")
        if sid is not None and request.method in ("GET", "POST"):
            socket = sio.eio.sockets.get(sid)
            if socket is None or socket.closed:
                return json_error(400, "unknown_session", "no open Socket.IO session has this sid")
            cap = sio.eio.max_http_buffer_size
            if request.method == "POST" and (request.content_length or 0) > cap:
                record_rejection("payload")
                await sio.close_transport(sid)
                return json_error(
                    413, "payload_too_large", f"a Socket.IO message is at most {cap} bytes"
                )
        elif sid is None and request.method == "GET":
            address = client_ip(request, sio.trust_forwarded_for)
            if sio.address_full(address):
                record_rejection("connections_per_ip")
                cap = sio.max_connections_per_ip
                return json_error(
                    429,
                    "too_many_connections",
                    f"at most {cap} connections from one address; close some first",
                )
        return await handler(request)

    return transport
