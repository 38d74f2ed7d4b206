"""Cross-process Socket.IO fan-out over Redis pub/sub, one channel per room.

python-socketio's stock ``AsyncRedisManager`` publishes every emit on one
channel that every process receives and decodes, so each process pays for
the whole cluster's traffic. :class:`RoomChannelManager` instead:

* publishes an emit to a room on that room's channel
  (``tutti:sio:<namespace>:<room>``) and delivers it to local members at once;
* subscribes a process to a room's channel when the room gets its first
  local member and unsubscribes after the last one leaves, so a process with
  no members in a busy room receives nothing of its traffic;
* pipelines publishes: one task drains a FIFO queue and sends everything
  queued in one round trip, which keeps each process's messages for a room
  in order (Redis delivers a connection's publishes in order);
* reconnects after a Redis failure and subscribes again to every channel it
  needs; emits made while Redis is away are queued (up to ``max_queue``).

Limits (documented, not needed by Tutti): server-to-client callbacks work
for local clients only; an emit addressed to a single sid reaches it only on
its own process. A subscription takes effect when Redis has processed it, so
a message published by another process in the instant between a local
``enter_room`` and that moment is not delivered here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio

from server.realtime.sio_manager import DirectEmit

log = logging.getLogger("tutti.fanout")

PREFIX = "tutti:sio:"
BROADCAST = PREFIX + "*all*"


def room_channel(namespace: str, room: str) -> str:
    """The Redis channel of a Socket.IO room."""
    return f"{PREFIX}{namespace}:{room}"


class RoomChannelManager(DirectEmit, socketio.AsyncManager):
    """A Socket.IO client manager fanning out over one Redis channel per room.

    ``url``: a ``redis://`` URL. Counters (for measurements): ``published``
    (messages sent to Redis), ``received`` (messages Redis delivered to this
    process), ``delivered`` (of those, emitted to at least one local client),
    ``reconnects``. Local delivery is :class:`server.realtime.sio_manager.DirectEmit`.
    """

    name = "tutti-room-channels"

    def __init__(self, url: str, *, max_queue: int = 100_000) -> None:
        super().__init__()
        self.url = url
        self.node_id = uuid.uuid4().hex
        self.published = self.received = self.delivered = self.reconnects = 0
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(max_queue)
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task] = []
        self.on_lag: Any = None  # called with each received message's publish time (Unix s)

    # -- lifecycle -----------------------------------------------------------------

    def initialize(self) -> None:
        super().initialize()
        self._tasks = [
            asyncio.ensure_future(self._publisher()),
            asyncio.ensure_future(self._listener()),
        ]

    def stats(self) -> dict[str, Any]:
        return {
            "manager": self.name,
            "channels": len(self._channels),
            "published": self.published,
            "received": self.received,
            "delivered": self.delivered,
            "reconnects": self.reconnects,
        }

    # -- emitting --------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        namespace = namespace or "/"
        room = to or room
        await super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
        )
        if callback is not None:
            return  # acks are local only
        if room is not None and not isinstance(room, str):
            return  # several rooms at once: not used by Tutti
        if room is not None and self.is_connected(room, namespace):
            return  # a local sid: nobody else needs it
        channel = BROADCAST if room is None else room_channel(namespace, room)
        message = orjson.dumps(
            {
                "n": self.node_id,
                "e": event,
                "d": data,
                "ns": namespace,
                "r": room,
                "s": skip_sid,
                "t": time.time(),  # publish time: receivers measure the pub/sub lag
            }
        )
        try:
            self._queue.put_nowait((channel, message))
        except asyncio.QueueFull:
            log.error("fan-out queue full: dropping %s to %s", event, channel)

    async def _publisher(self) -> None:
        client = aioredis.from_url(self.url)
        while True:
            item = await self._queue.get()
            batch = [item]
            while not self._queue.empty() and len(batch) < 1000:
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, message in batch:
                            pipe.publish(channel, message)
                        await pipe.execute()
                    self.published += len(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis away: keep the batch, retry in order
                    log.warning("publishing to Redis failed (%s); retrying", exc)
                    await asyncio.sleep(0.5)

    # -- receiving --------------------------------------------------------------------

    async def _listener(self) -> None:
        first = True
        while True:
            client = aioredis.from_url(self.url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                channels = set(self._channels)
                await pubsub.subscribe(BROADCAST, *channels)
                self._pubsub = pubsub
                if self._channels - channels:  # rooms entered while that subscribe was under way
                    await pubsub.subscribe(*(self._channels - channels))
                if channels - self._channels:  # ...and rooms left meanwhile
                    await pubsub.unsubscribe(*(channels - self._channels))
                if not first:
                    self.reconnects += 1
                    log.info("fan-out reconnected to Redis (%d channels)", len(self._channels))
                first = False
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._handle(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fan-out lost Redis (%s); reconnecting", exc)
            finally:
                self._pubsub = None
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass
            await asyncio.sleep(0.5)

    async def _handle(self, raw: bytes) -> None:
        self.received += 1
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("fan-out: undecodable message ignored")
            return
        if msg["n"] == self.node_id:
            return  # our own publish: already delivered locally
        if self.on_lag is not None and "t" in msg:
            self.on_lag(msg["t"])
        room = msg["r"]
        namespace = msg["ns"]
        if room is not None and not self.rooms.get(namespace, {}).get(room):
            return  # the last local member left a moment ago
        self.delivered += 1
        await super().emit(msg["e"], msg["d"], namespace, room=room, skip_sid=msg["s"])

    # -- subscriptions follow local membership ------------------------------------------

    async def enter_room(self, sid, namespace, room, eio_sid=None):
        result = super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None and room != sid:
            await self._subscribe(room_channel(namespace, room))
        return result

    async def leave_room(self, sid, namespace, room):
        result = super().basic_leave_room(sid, namespace, room)
        await self._unsubscribe_if_empty(namespace, room)
        return result

    async def disconnect(self, sid, namespace, **kwargs):
        rooms = [r for r in self.get_rooms(sid, namespace) if r != sid]
        result = super().basic_disconnect(sid, namespace, **kwargs)
        for room in rooms:
            await self._unsubscribe_if_empty(namespace, room)
        return result

    async def close_room(self, room, namespace):
        result = super().basic_close_room(room, namespace)
        await self._unsubscribe_if_empty(namespace, room)
        return result

    async def _subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._pubsub is not None:
            try:
                await self._pubsub.subscribe(channel)
            except Exception as exc:  # the listener re-subscribes after reconnecting
                log.warning("subscribing to %s failed (%s)", channel, exc)

    async def _unsubscribe_if_empty(self, namespace: str, room: Any) -> None:
        if room is None or self.rooms.get(namespace, {}).get(room):
            return
        channel = room_channel(namespace, room)
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except Exception as exc:
                log.warning("unsubscribing from %s failed (%s)", channel, exc)
