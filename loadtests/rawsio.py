"""A minimal Socket.IO client speaking the wire protocol directly over one aiohttp websocket.

Engine.IO v4 / Socket.IO v5 text packets only (what a load generator needs):
the server's open packet ``0{...}``, namespace connect ``40{auth}`` answered
by ``40{"sid"}`` or ``44{error}``, events ``42[name, data]`` (with an ack id
``42<id>[...]``), acks ``43<id>[data]``, and the server's ping ``2``
answered with pong ``3``. No polling, no binary packets, no reconnection.
Specs: https://github.com/socketio/engine.io-protocol (v4) and
https://github.com/socketio/socket.io-protocol (v5).

It costs a fraction of python-socketio's client per message, so one
generator process can drive thousands of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

OnEvent = Callable[[str, Any], None]


class SioError(Exception):
    """The namespace connect was refused (``data`` is the server's error payload)."""

    def __init__(self, data: Any) -> None:
        super().__init__(str(data))
        self.data = data


class RawSio:
    """One websocket connection to ``url`` (``http://host:port``), default namespace.

    ``on_event(name, data)`` is called synchronously for every server event,
    from the reader task; keep it short. With ``only`` (packet prefixes after
    ``42``, e.g. ``('["note"',)``), other events are not decoded: they come
    as ``on_event("", None)``.
    """

    GOODBYE: str | None = "41"  # sent before closing the websocket (leave the namespace)

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        on_event: OnEvent,
        only: tuple[str, ...] = (),
    ) -> None:
        self.session = session
        self.only = only  # event prefixes to decode, e.g. ('["note"',); others get ("", None)
        self.url = url.replace("http://", "ws://", 1).rstrip("/")
        self.on_event = on_event
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._acks: dict[int, Any] = {}  # ack id -> Future or callback
        self._next_id = 0
        self._reader: asyncio.Task | None = None
        self.closed = False

    async def connect(self, auth: dict[str, Any] | None, timeout: float = 30.0) -> None:
        """Open the websocket and connect the default namespace with ``auth``."""
        self.ws = await self.session.ws_connect(
            f"{self.url}/socket.io/?EIO=4&transport=websocket",
            autoping=False,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            max_msg_size=0,
        )
        opened = await asyncio.wait_for(self.ws.receive(), timeout)
        if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
            raise SioError(f"no Engine.IO open packet: {opened.data!r}")
        await self.ws.send_str("40" + (orjson.dumps(auth).decode() if auth else ""))
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise SioError(f"connection closed during connect ({msg.type})")
            if msg.data == "2":
                await self.ws.send_str("3")
            elif msg.data.startswith("40"):
                break
            elif msg.data.startswith("44"):
                raise SioError(orjson.loads(msg.data[2:]))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        on_event = self.on_event
        loads = orjson.loads
        only = self.only
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith("42"):
                if data.startswith(only, 2) if only else True:
                    name, payload = loads(data[2:])
                    on_event(name, payload)
                else:  # not wanted: counted, not decoded (saves the generator's CPU)
                    on_event("", None)
            elif data.startswith("43"):
                bracket = data.index("[", 2)
                args = loads(data[bracket:])
                self._acked(int(data[2:bracket]), args[0] if args else None)
            elif data == "2":
                await ws.send_str("3")
            elif data.startswith("41"):  # the server disconnected us from the namespace
                break
        self._closed()

    def _closed(self) -> None:
        """The connection has ended: fail the acks still awaited."""
        acks = self._acks
        self.closed = True
        for ack in acks.values():
            if isinstance(ack, asyncio.Future) and not ack.done():
                ack.set_exception(ConnectionError("connection closed"))
        acks.clear()

    def _acked(self, ack_id: int, value: Any) -> None:
        """Resolve the ack ``ack_id`` (a future or a callback) with ``value``."""
        ack = self._acks.pop(ack_id, None)
        if ack is None:
            return
        if isinstance(ack, asyncio.Future):
            if not ack.done():
                ack.set_result(value)
        else:
            ack(value)

    def _packet(self, event: str, data: Any, ack_id: int | None) -> str:
        body = orjson.dumps([event, data]).decode()
        return f"42{ack_id}{body}" if ack_id is not None else "42" + body

    async def call(self, event: str, data: Any, timeout: float = 30.0) -> Any:
        """Emit ``event`` and wait for its ack's first argument."""
        assert self.ws is not None
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._acks[self._next_id] = future
        await self.ws.send_str(self._packet(event, data, self._next_id))
        return await asyncio.wait_for(future, timeout)

    async def emit(self, event: str, data: Any, on_ack: Callable[[Any], None] | None) -> None:
        """Emit ``event``; ``on_ack(value)`` is called when its ack comes (if given)."""
        assert self.ws is not None
        ack_id = None
        if on_ack is not None:
            self._next_id += 1
            ack_id = self._next_id
            self._acks[ack_id] = on_ack
        await self.ws.send_str(self._packet(event, data, ack_id))

    @property
    def pending_acks(self) -> int:
        return len(self._acks)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                if self.GOODBYE is not None:
                    await self.ws.send_str(self.GOODBYE)
                await self.ws.close()
            except (ConnectionError, RuntimeError):
                pass
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self.closed = True
