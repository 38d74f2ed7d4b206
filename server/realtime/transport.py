"""The transport guard: what a connection may send below the events, checked before buffering.

:class:`TuttiServer` is python-socketio's ``AsyncServer`` with these checks on
every Engine.IO message, before python-socketio decodes or keeps anything:

* **No binary packets.** Tutti has no binary events. A Socket.IO packet of
  type 5 or 6 (``BINARY_EVENT``, ``BINARY_ACK``: ``451-["clock",
  {"_placeholder": true, "num": 0}]`` followed by binary frames) or a binary
  frame closes the connection at once (``binary_not_supported``): the stock
  server would keep the announced attachments (up to 10⁹, each up to the
  message cap) in memory until the last arrives.

Closing for what a connection sent (:meth:`TuttiServer.cut`) logs a WARNING
with the reason, sends ``connection:closed {"code", "message"}`` to a
connection that passed the handshake, then closes the Engine.IO session
(:meth:`TuttiServer.close_transport`): what it sends afterwards is read and
dropped until the socket is gone.

Hooks: python-socketio 5's ``AsyncServer._handle_eio_connect``,
``_handle_eio_message`` and ``_handle_eio_disconnect`` (the handlers it
registers with python-engineio); each behaviour here has a test through a
real server (``tests/e2e/test_transport.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

log = logging.getLogger("tutti.transport")

BINARY_TYPES = ("5", "6")  # Socket.IO BINARY_EVENT, BINARY_ACK


class TuttiServer(socketio.AsyncServer):
    """``socketio.AsyncServer`` with the transport checks of this module."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cut: set[str] = set()  # eio sids closed for what they sent

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
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self._cut.discard(eio_sid)

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
