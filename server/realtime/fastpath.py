"""The note path's shortcuts through python-socketio and python-engineio (issue 12).

Profiled under the relay benchmark (``loadtests/bench/relay.py``, py-spy,
120 duets × 10 notes/s), the stock stack spends on every note, besides the
work itself, an asyncio task to run the handler and, for every packet sent,
a trip through the recipient's Engine.IO queue to its writer task. Both are
taken out here, with the same packets in the same order:

* :class:`InlineEvents` (a ``socketio.AsyncServer`` mixin): the events of
  :data:`INLINE_EVENTS` — notes and clock exchanges, short handlers with no
  database work — run in the connection's own read loop instead of a task
  each (python-socketio's ``async_handlers=False``, for these events only).
  A connection's next message is read once its note is handled, so its
  events are handled in the order sent; slow events (room operations, sync)
  keep their task and do not hold the connection's reading up. Their ack
  is formatted in one step (:func:`server.realtime.codec.ack_text`) and
  handed to Engine.IO as text, not built as a Socket.IO packet object.
* :class:`DirectEngineIO` (the ``engineio.AsyncServer`` of
  :class:`server.realtime.transport.TuttiServer`): a packet for a websocket
  session whose queue is empty and whose writer is not in the middle of a
  send is written straight to the websocket; otherwise (polling, an upgrade
  in progress, packets already waiting, a closing session) it takes the
  stock queue, so no packet overtakes another. The writer task stays for
  the rest (pings, the CLOSE packet, backlogs).
* :class:`DirectWebSocket`: the websocket driver that makes this possible:
  it tells its Engine.IO session it is there (``session.direct_websocket``),
  counts the sends in flight, and calls aiohttp's ``send_str`` without the
  driver's per-message ``inspect.iscoroutinefunction``.

Hooks: python-socketio 5's ``AsyncServer._handle_event`` and
``_engineio_server_class``, python-engineio 4's ``AsyncServer.send_packet``
and its aiohttp driver's websocket class (``_async["websocket"]``), as in
:mod:`server.realtime.transport`.
"""

from __future__ import annotations

import logging
from typing import Any

import engineio
from socketio import packet as _packet

from server.realtime.codec import ack_text
from server.realtime.malformed import CheckedWebSocket

log = logging.getLogger("tutti.transport")

INLINE_EVENTS = frozenset(("note", "notes", "clock"))
"""Client events handled in the connection's read loop (see module)."""


class InlineEvents:
    """Mixin for a ``socketio.AsyncServer``: :data:`INLINE_EVENTS` without a task each."""

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: list):
        name = data[0] if data else None
        if not (isinstance(name, str) and name in INLINE_EVENTS):
            await super()._handle_event(eio_sid, namespace, id, data)  # type: ignore[misc]
            return
        # python-socketio's _handle_event with async_handlers=False.
        namespace = namespace or "/"
        manager = self.manager  # type: ignore[attr-defined]
        sid = manager.sid_from_eio_sid(eio_sid, namespace)
        if not manager.is_connected(sid, namespace):
            return
        # python-socketio's _handle_event_internal, the ack as one pre-formatted string.
        r = await self._trigger_event(data[0], namespace, sid, *data[1:])  # type: ignore[attr-defined]
        if id is None or r == self.not_handled:  # type: ignore[attr-defined]
            return
        args = [] if r is None else list(r) if isinstance(r, tuple) else [r]
        text = ack_text(namespace, id, args)
        if text is None:  # binary: the stock packet
            pkt = self.packet_class(_packet.ACK, namespace=namespace, id=id, data=args)  # type: ignore[attr-defined]
            await self._send_packet(eio_sid, pkt)  # type: ignore[attr-defined]
        else:
            await self.eio.send(eio_sid, text)  # type: ignore[attr-defined]


class DirectWebSocket(CheckedWebSocket):
    """The aiohttp websocket driver of a :class:`DirectEngineIO` session (see module)."""

    sending = 0  # sends in flight (awaiting aiohttp's drain)

    async def wait(self):
        session = getattr(self.handler, "__self__", None)
        if session is not None and getattr(session, "direct_websocket", None) is not self:
            session.direct_websocket = self  # the session reads from us: it may write to us too
        return await super().wait()

    async def send(self, message):
        self.sending += 1
        try:
            if isinstance(message, bytes):
                await self._sock.send_bytes(message)
            else:
                await self._sock.send_str(message)
        finally:
            self.sending -= 1


class DirectEngineIO(engineio.AsyncServer):
    """python-engineio's server writing a packet straight to an idle websocket (see module)."""

    async def send_packet(self, sid: str, pkt: Any) -> None:
        socket = self.sockets.get(sid)
        ws = getattr(socket, "direct_websocket", None)
        if (
            ws is None
            or ws.sending
            or not socket.upgraded
            or socket.upgrading
            or socket.closing
            or socket.closed
            or not socket.queue.empty()
        ):
            await super().send_packet(sid, pkt)
            return
        try:
            await ws.send(pkt.encode())
        except Exception as exc:  # noqa: BLE001 - gone meanwhile: as the writer task, drop it
            log.debug("sending to %s failed: %s", sid, exc)
