"""The client of the raw websocket relay (:mod:`loadtests.relays.raw_aiohttp`): JSON frames.

:class:`RawJson` is :class:`loadtests.rawsio.RawSio` (same calls, acks and
callbacks, so the benchmark's generator drives either) speaking the relay's
minimal protocol over one aiohttp websocket at ``/ws``: ``[event, data,
ack_id]`` up, ``[ack_id, value]`` (an ack) or ``[event, data]`` (an event)
down. No handshake, no namespace, no pings of its own (aiohttp's websocket
ping/pong frames, if any, are answered by aiohttp).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from loadtests.rawsio import RawSio


class RawJson(RawSio):
    """One websocket connection to the raw relay at ``url`` (``http://host:port``)."""

    GOODBYE = None

    async def connect(self, auth: dict[str, Any] | None, timeout: float = 30.0) -> None:
        """Open the websocket (``auth`` is ignored: the raw relay has none)."""
        self.ws = await asyncio.wait_for(
            self.session.ws_connect(
                f"{self.url}/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5.0), max_msg_size=0
            ),
            timeout,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        on_event = self.on_event
        loads = orjson.loads
        only = self.only
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith("["):
                if data[1:2] == '"':
                    if data.startswith(only) if only else True:
                        name, payload = loads(data)
                        on_event(name, payload)
                    else:  # not wanted: counted, not decoded
                        on_event("", None)
                else:
                    ack_id, value = loads(data)
                    self._acked(ack_id, value)
        self._closed()

    def _packet(self, event: str, data: Any, ack_id: int | None) -> str:
        body = [event, data] if ack_id is None else [event, data, ack_id]
        return orjson.dumps(body).decode()
