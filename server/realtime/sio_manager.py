"""Socket.IO client managers that emit to a room without a task per recipient.

python-socketio's ``AsyncManager.emit`` encodes a room emit once, then
creates one asyncio task per recipient and waits for them all
(``asyncio.wait``). Each task only puts the packet on the recipient's
Engine.IO queue (an unbounded ``asyncio.Queue``, which never suspends), so
the tasks buy no concurrency, only cost: in the relay benchmark's profile
(``loadtests/bench/relay.py``) task creation and ``asyncio.wait`` were a
large share of every ``note`` relay. :class:`DirectEmit` sends to the
recipients one after the other in the emitting coroutine: the same packets,
in the same order, and a recipient that has gone away is skipped (logged),
as before. Emits with a server-to-client ``callback`` keep the stock path.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

log = logging.getLogger("tutti.sio")


class DirectEmit:
    """Mixin for a ``socketio.AsyncManager`` subclass (see module)."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(  # type: ignore[misc]
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to,
                **kwargs,
            )  # fmt: skip
            return
        room = to or room
        if namespace not in self.rooms:  # type: ignore[attr-defined]
            return
        # The argument conventions of socketio.AsyncManager.emit.
        if isinstance(data, tuple):
            data = list(data)
        elif data is not None:
            data = [data]
        else:
            data = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        server = self.server  # type: ignore[attr-defined]
        pkt = server.packet_class(packet.EVENT, namespace=namespace, data=[event] + data)
        encoded = pkt.encode()
        if not isinstance(encoded, list):
            encoded = [encoded]
        eio_pkts = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded]
        send = server.eio.send_packet
        for sid, eio_sid in self.get_participants(namespace, room):  # type: ignore[attr-defined]
            if sid in skip:
                continue
            for p in eio_pkts:
                try:
                    await send(eio_sid, p)
                except Exception as exc:  # e.g. the socket closed meanwhile: skip it
                    log.debug("emit %s to %s failed: %s", event, sid, exc)


class LocalManager(DirectEmit, socketio.AsyncManager):
    """One process: python-socketio's in-memory manager with :class:`DirectEmit`."""
