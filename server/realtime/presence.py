"""Presence of users' devices (issue 3), Phoenix-style, in-process or shared through Redis.

The room manager calls the hooks of :class:`PresenceService`; :class:`Presence`
implements them on top of a :class:`PresenceStore` and emits the events:

* ``presence:state`` ``{"topic", "state": {user_id: {"metas": [meta, ...]}}}``
  to a device when it connects (topic ``user:{user_id}``) and when it joins a
  room (topic ``room:{room_id}``);
* ``presence:diff`` ``{"topic", "joins", "leaves"}`` on every change, to the
  user's devices (Socket.IO room ``user:{user_id}``) and to the room's members
  (Socket.IO room ``room_id``).

A meta is ``{"device_id", "device_name", "online_at", "room_id", "status",
"ref"}``; every change of a device gives it a new ``ref`` and is sent as a
leave of the old meta and a join of the new one. The semantics, and how a
client applies a diff, are in :mod:`rooms.presence`.

**One process** (no ``redis_url``): a :class:`LocalStore` keeps the devices in
memory.

**Several processes** (``redis_url``): the Socket.IO client manager (the
per-room channels of :mod:`server.realtime.fanout`, or python-socketio's
``AsyncRedisManager``) already carries every ``sio.emit`` to a room to the
sockets of every process, so diffs need no channel of their own: the process
that owns a device's connection emits its diffs. Redis holds the shared
*state* (:class:`server.realtime.presence_store.RedisStore`, whose module
lists the keys), so a device's ``presence:state`` includes devices on other
processes.

Every process scans the nodes every 5 s; a node whose heartbeat key has expired
is reaped (by exactly one process), and the reaping process emits their
leaves. A process killed without warning has its devices leave within TTL +
scan interval ≈ 20 s.

A device has one meta, so one room: a connection in two rooms at once shows
the last one it joined. A device id has one entry: the newest connection of a
device owns it; a connection that no longer owns its device changes nothing,
and when the owner disconnects another connection of the same device on this
process takes over.

The hooks never raise: a Redis error is logged and the room manager goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import socketio
from redis.exceptions import RedisError

from rooms.presence import (
    Diff,
    Meta,
    device_diffs,
    make_meta,
    room_topic,
    user_topic,
)
from server.config import Settings
from server.realtime.presence_store import LocalStore, PresenceStore, RedisStore, now_ms

log = logging.getLogger("tutti.presence")

HEARTBEAT_INTERVAL_S = 5.0  # s: heartbeats are refreshed this often; dead nodes looked for as often


def _log_failure(exc: BaseException, message: str, *args: Any) -> None:
    """Redis away or slow: one line. Anything else is a bug: the traceback."""
    if isinstance(exc, RedisError | OSError):
        log.warning(message + " (%s: %s)", *args, type(exc).__name__, exc)
    else:
        log.error(message, *args, exc_info=exc)


def _sio_room(topic: str) -> str:
    """The Socket.IO room of ``topic``'s subscribers.

    ``user:{id}`` is also the name of the room of a user's devices
    (:func:`server.services.sync.user_room`); ``room:{id}`` is room ``{id}``.
    """
    return topic.removeprefix("room:") if topic.startswith("room:") else topic


class PresenceService:
    """Hooks the room manager calls when a device connects, changes or leaves.

    This base does nothing; :class:`Presence` is the implementation.
    """

    async def start(self) -> None:
        """Begin background work (heartbeats)."""

    async def stop(self) -> None:
        """End background work; forget this process's devices."""

    async def device_connected(self, connection: Any) -> None:
        """A device connected (``connection``: :class:`server.realtime.connections.Connection`)."""

    async def device_changed(self, connection: Any, room_id: str | None, status: str) -> None:
        """A device joined or left a room, or its status changed
        (``status``: ``idle``, ``practicing`` or ``listening``)."""

    async def device_disconnected(self, connection: Any) -> None:
        """A device disconnected."""


# -- the service ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Device:
    """One local connection as presence sees it."""

    sid: str
    user_id: str
    device_id: str
    device_name: str
    online_at: int
    room_id: str | None = None
    status: str = "idle"


class Presence(PresenceService):
    """Phoenix-style presence of devices per user and per room, on ``store``.

    A write that fails (Redis away) is logged and retried by the heartbeat
    loop; the room manager never sees the error.
    """

    def __init__(
        self,
        sio: socketio.AsyncServer,
        store: PresenceStore,
        *,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.sio = sio
        self.store = store
        self.heartbeat_interval_s = heartbeat_interval_s
        self._devices: dict[str, _Device] = {}  # sid -> device, this process's connections
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._refs = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._retrack: set[str] = set()  # sids whose last write failed
        self._reuntrack: dict[str, _Device] = {}  # gone devices whose removal failed

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.store.start()
        except Exception as exc:
            _log_failure(exc, "presence store did not start; retrying in the background")
        if self.store.heartbeats:
            self._task = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for device in list(self._devices.values()):
            await self._untrack(device)
        try:
            for user_id, meta in await self.store.stop():
                await self._emit_diffs(user_id, device_diffs(user_id, meta, None))
        except Exception as exc:
            _log_failure(exc, "presence store did not stop cleanly")

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                if await self.store.heartbeat():
                    # Others took this node for dead and may have dropped its devices.
                    log.warning("presence heartbeat had lapsed; tracking local devices again")
                    self._retrack.update(self._devices)
                await self._repair()
                for user_id, meta in await self.store.reap():
                    await self._emit_diffs(user_id, device_diffs(user_id, meta, None))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log_failure(exc, "presence heartbeat failed; trying again")
            await asyncio.sleep(self.heartbeat_interval_s)

    async def _repair(self) -> None:
        """Write again what failed: removals of gone devices, then local devices."""
        for sid, device in list(self._reuntrack.items()):
            del self._reuntrack[sid]
            await self._untrack(device)
            if sid in self._reuntrack:
                return  # still failing: again at the next beat
        for sid in list(self._retrack):
            self._retrack.discard(sid)
            device = self._devices.get(sid)
            if device is not None:
                await self._write(device, takeover=False, states=self._topics(device))
                if sid in self._retrack:
                    return

    # -- hooks ---------------------------------------------------------------------------

    async def device_connected(self, connection: Any) -> None:
        device = _Device(
            sid=connection.sid,
            user_id=connection.user_id,
            device_id=connection.device_id,
            device_name=connection.device_name,
            online_at=now_ms(),
        )
        self._devices[device.sid] = device
        await self._write(device, takeover=True, states=(user_topic(device.user_id),))

    async def device_changed(self, connection: Any, room_id: str | None, status: str) -> None:
        device = self._devices.get(connection.sid)
        if device is None or (device.room_id, device.status) == (room_id, status):
            return
        # A device entering a room is in its Socket.IO room already: it gets the room's state.
        entered = (
            (room_topic(room_id),) if room_id is not None and room_id != device.room_id else ()
        )
        device.room_id, device.status = room_id, status
        await self._write(device, takeover=False, states=entered)

    async def device_disconnected(self, connection: Any) -> None:
        device = self._devices.pop(connection.sid, None)
        if device is not None:
            await self._untrack(device)

    # -- helpers -------------------------------------------------------------------------

    async def _write(self, device: _Device, *, takeover: bool, states: tuple[str, ...]) -> None:
        """Store ``device``'s meta and send its diffs.

        The device gets the state of each topic of ``states`` (read after the
        write) instead of the diff of its own arrival there. When that state
        shows the device alone in the topic and it was not there before, the
        diff has nobody to go to and is not sent: any other subscriber writes
        its own meta before reading its state, so it sees this device there.
        """
        try:
            async with self._lock(device.user_id):
                written, old, meta = await self._put(device, takeover=takeover)
                read = {topic: await self.store.state(topic) for topic in states}
                if written:
                    diffs = device_diffs(device.user_id, old, meta)
                    for topic, state in read.items():
                        refs = [m["ref"] for metas in state.values() for m in metas["metas"]]
                        if old is None and refs == [meta["ref"]]:  # alone there
                            diffs.pop(topic, None)
                    await self._emit_diffs(
                        device.user_id, diffs, skip=dict.fromkeys(states, device.sid)
                    )
                for topic, state in read.items():
                    await self.sio.emit(
                        "presence:state", {"topic": topic, "state": state}, to=device.sid
                    )
        except Exception as exc:
            self._retrack.add(device.sid)
            _log_failure(
                exc,
                "presence: writing %s of user %s failed; retrying with the heartbeat",
                device.sid,
                device.user_id,
            )

    async def _untrack(self, device: _Device) -> None:
        self._devices.pop(device.sid, None)
        self._retrack.discard(device.sid)
        try:
            async with self._lock(device.user_id):
                old = await self.store.remove(device.user_id, device.device_id, sid=device.sid)
                if old is None:
                    return
                await self._emit_diffs(device.user_id, device_diffs(device.user_id, old, None))
        except Exception as exc:
            self._reuntrack[device.sid] = device
            _log_failure(
                exc,
                "presence: removing %s of user %s failed; retrying with the heartbeat",
                device.sid,
                device.user_id,
            )
            return
        # Another connection of the same device here (a second tab) takes over.
        for heir in list(self._devices.values()):
            if (heir.user_id, heir.device_id) == (device.user_id, device.device_id):
                await self._write(heir, takeover=True, states=())
                break

    async def _put(self, device: _Device, *, takeover: bool) -> tuple[bool, Meta | None, Meta]:
        """Store a new meta (a new ref) of ``device``: ``(written, old meta, new meta)``."""
        meta = make_meta(
            device_id=device.device_id,
            device_name=device.device_name,
            online_at=device.online_at,
            room_id=device.room_id,
            status=device.status,
            ref=f"{self.store.node_id}.{next(self._refs)}",
        )
        written, old = await self.store.put(device.user_id, meta, sid=device.sid, takeover=takeover)
        return written, old, meta

    async def _emit_diffs(
        self, user_id: str, diffs: dict[str, Diff], skip: dict[str, str] | None = None
    ) -> None:
        for topic, change in diffs.items():
            await self.sio.emit(
                "presence:diff",
                {"topic": topic, **change},
                room=_sio_room(topic),
                skip_sid=(skip or {}).get(topic),
            )

    @staticmethod
    def _topics(device: _Device) -> tuple[str, ...]:
        if device.room_id is None:
            return (user_topic(device.user_id),)
        return (user_topic(device.user_id), room_topic(device.room_id))

    def _lock(self, user_id: str) -> asyncio.Lock:
        # One lock per user with local devices: a user's changes are stored and sent in order.
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock


def make_presence(settings: Settings, sio: socketio.AsyncServer) -> PresenceService:
    """The presence service for ``settings`` (Redis when ``redis_url`` is set)."""
    node_id = uuid.uuid4().hex[:12]
    if settings.redis_url:
        return Presence(sio, RedisStore(settings.redis_url, node_id))
    return Presence(sio, LocalStore(node_id))
