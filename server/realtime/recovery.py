"""Recovery streams: a bounded log of each room's events for clients that reconnect.

Every event a member must not miss (``note``/``notes`` relays, ``room:state``,
``room:started``, ``score:update``, ``room:finished``) is appended to the
room's stream before it is emitted, and the emitted payload carries the
entry's ``"offset"`` and the stream's ``"epoch"``. A client that reconnects
(to any process) sends ``recover: {"epoch", "offset"}`` with ``room:join``
and gets the entries after that offset, or ``None`` (not recoverable) when:

* the epoch differs (the stream was lost, e.g. Redis restarted empty, or had
  a gap because Redis was unreachable while an event was emitted), or
* the entry at ``offset`` is no longer in the stream (trimmed to
  ``max_events``, or expired), or it is older than ``window_s``.

:class:`RedisStreams` (several processes): ``tutti:room:{id}:stream`` (an
``XADD … MAXLEN ~ max_events`` stream with fields ``e`` event, ``d`` JSON
data) and ``tutti:room:{id}:epoch`` (a random id set when the stream is
created), both expiring ``window_s`` after the last append; one Lua script
appends atomically, and appends made at the same time share one round trip
(:class:`server.realtime.redis_batch.ScriptBatcher`). :class:`LocalStreams` (one
process): an in-process bounded deque per room (payloads kept as JSON
bytes) with the same semantics.

The room's note log (several processes only): every ``note``/``notes`` entry
is also pushed, in the same script, onto ``tutti:room:{id}:notes`` (a list of
the same JSON data), which is never trimmed and expires only with the room
(``NOTE_LOG_TTL_S`` after the last note; ``window_s`` after the room is
saved). Its length is bounded by the room's note limit
(``rooms.room.RoomSettings.max_note_events``). The recovery stream itself
stays bounded (``max_events``, ``window_s``): it also carries every
``score:update`` (4 a second per player), so a bound by notes cannot hold
for it. A process that takes a room over (:class:`server.realtime.clustered.ClusteredRoomService`)
rebuilds each player's scorer from the note log (:meth:`RedisStreams.notes`).
When the log may lack a process's earlier notes (Redis restarted empty: the
hash ``tutti:room:{id}:notes:nodes`` no longer names the process; or an
append failed), the process puts its replica's notes back
(:attr:`RedisStreams.on_log_lost`, :meth:`RedisStreams.log_notes`).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from rooms.recording import RecordedEvent
from server.realtime.redis_batch import ScriptBatcher

log = logging.getLogger("tutti.recovery")

WINDOW_S = 120.0
MAX_EVENTS = 10_000
PREFIX = "tutti:room:"
# The note log lives as long as a room's record may (server.realtime.room_directory.ROOM_TTL_S).
NOTE_LOG_TTL_S = 24 * 3600

Missed = list[dict[str, Any]]

_APPEND = """
local epoch = redis.call('GET', KEYS[1])
if (not epoch) or ARGV[6] == '1' then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], epoch)
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[4], 'd', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local fresh = 0
if ARGV[4] == 'note' or ARGV[4] == 'notes' then
  redis.call('RPUSH', KEYS[3], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
  fresh = redis.call('HSETNX', KEYS[4], ARGV[8], '1')
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
return {epoch, id, fresh}
"""


def _offset_key(offset: str) -> tuple[int, int]:
    ms, _, n = offset.partition("-")
    return int(ms), int(n or 0)


def valid_offset(offset: str) -> bool:
    try:
        _offset_key(offset)
    except ValueError:
        return False
    return True


class LocalStreams:
    """One process: each room's recent events in a bounded deque."""

    def __init__(self, max_events: int = MAX_EVENTS, window_s: float = WINDOW_S) -> None:
        self.max_events = max_events
        self.window_s = window_s
        self._rooms: dict[str, tuple[str, deque]] = {}
        self._counter = itertools.count(1)

    async def append(self, room_id: str, event: str, data: dict[str, Any]) -> tuple[str, str]:
        """Log ``event``; returns ``(epoch, offset)``."""
        entry = self._rooms.get(room_id)
        now = time.time()
        if entry is None or (entry[1] and now - entry[1][-1][1] > self.window_s):
            entry = (uuid.uuid4().hex[:16], deque(maxlen=self.max_events))
            self._rooms[room_id] = entry
        offset = f"{int(now * 1000)}-{next(self._counter)}"
        # Kept encoded: a tuple of str/float/bytes is not tracked by Python's garbage
        # collector, while 10 000 dicts per room made every full collection walk them all
        # (tens of ms per collection under the relay benchmark's load).
        entry[1].append((offset, now, event, orjson.dumps(data)))
        return entry[0], offset

    async def since(self, room_id: str, epoch: str, offset: str) -> Missed | None:
        entry = self._rooms.get(room_id)
        if entry is None or entry[0] != epoch or not valid_offset(offset):
            return None
        items = list(entry[1])
        for index, (off, at, _, _) in enumerate(items):
            if off == offset:
                if time.time() - at > self.window_s:
                    return None
                return [
                    {"event": e, "data": {**orjson.loads(d), "epoch": epoch, "offset": o}}
                    for o, _, e, d in items[index + 1 :]
                ]
        return None

    def drop(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)


class RedisStreams:
    """Several processes: each room's recent events in a Redis stream (see module)."""

    def __init__(
        self,
        redis: Any,
        max_events: int = MAX_EVENTS,
        window_s: float = WINDOW_S,
        node_id: str = "",
    ) -> None:
        self.redis = redis
        self.max_events = max_events
        self.window_s = window_s
        self.node_id = node_id or uuid.uuid4().hex
        self._script = redis.register_script(_APPEND)
        self._gaps: set[str] = set()  # rooms with an event that could not be logged
        # Called with (room_id, data) after a note was logged when the room's note log may
        # lack this process's earlier notes: Redis lost it (restarted empty), or an
        # append failed meanwhile. The room service puts its replica's notes back.
        self.on_log_lost: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    @property
    def redis(self) -> Any:
        return self._redis

    @redis.setter
    def redis(self, client: Any) -> None:
        self._redis = client
        self._batch = ScriptBatcher(client)  # appends of many events in one round trip

    async def append(
        self, room_id: str, event: str, data: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Log ``event``; ``(epoch, offset)``, or ``None`` when Redis is away.

        After a failed append the next one starts a new epoch: the stream has
        a gap, so offsets from before it cannot be trusted.
        """
        keys = [
            f"{PREFIX}{room_id}:epoch",
            f"{PREFIX}{room_id}:stream",
            _notes_key(room_id),
            _notes_key(room_id) + ":nodes",
        ]
        args = [
            uuid.uuid4().hex[:16],
            self.max_events,
            max(1, int(self.window_s)),
            event,
            orjson.dumps(data),
            "1" if room_id in self._gaps else "0",
            NOTE_LOG_TTL_S,
            self.node_id,
        ]
        try:
            epoch, offset, fresh = await self._batch.call(self._script, keys, args)
        except Exception as exc:  # RedisError, OSError: Redis away
            if room_id not in self._gaps:
                log.warning("room %s: recovery stream unavailable (%s)", room_id, exc)
            self._gaps.add(room_id)
            return None
        gap = room_id in self._gaps
        self._gaps.discard(room_id)
        if (fresh or gap) and event in ("note", "notes") and self.on_log_lost is not None:
            await self.on_log_lost(room_id, data)
        return epoch.decode(), offset.decode()

    async def log_notes(self, room_id: str, events: Sequence[RecordedEvent]) -> None:
        """Put ``events`` (this replica's) back into the room's note log (duplicates of
        what it holds are harmless: :meth:`notes` keeps one event per ``seq``).

        Raises ``RedisError``/``OSError`` when Redis is away.
        """
        if not events:
            return
        key = _notes_key(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for e in events:
                pipe.rpush(
                    key,
                    orjson.dumps(
                        {
                            "user_id": e.user_id,
                            "part": e.part,
                            "seq": e.seq,
                            "type": e.type,
                            "pitch": e.pitch,
                            "velocity": e.velocity,
                            "t": e.t_ms,
                        }
                    ),
                )
            pipe.expire(key, NOTE_LOG_TTL_S)
            await pipe.execute()

    async def since(self, room_id: str, epoch: str, offset: str) -> Missed | None:
        if not valid_offset(offset):
            return None
        if time.time() * 1000 - _offset_key(offset)[0] > self.window_s * 1000:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(f"{PREFIX}{room_id}:epoch")
            pipe.xrange(f"{PREFIX}{room_id}:stream", offset, offset)
            pipe.xrange(f"{PREFIX}{room_id}:stream", "(" + offset, "+")
            current, anchor, after = await pipe.execute()
        if current is None or current.decode() != epoch or not anchor:
            return None
        return [
            {
                "event": fields[b"e"].decode(),
                "data": {**orjson.loads(fields[b"d"]), "epoch": epoch, "offset": entry.decode()},
            }
            for entry, fields in after
        ]

    async def notes(self, room_id: str) -> list[RecordedEvent]:
        """Every note event accepted in ``room_id`` so far (the room's note log), by ``seq``.

        Raises ``RedisError``/``OSError`` when Redis is away.
        """
        out: dict[int, RecordedEvent] = {}
        for raw in await self.redis.lrange(_notes_key(room_id), 0, -1):
            data = orjson.loads(raw)
            user_id, part = data["user_id"], data["part"]
            for e in data.get("events", (data,)):
                out[e["seq"]] = RecordedEvent(
                    e["seq"], user_id, part, e["type"], e["pitch"], e["velocity"], e["t"]
                )
        return [out[seq] for seq in sorted(out)]

    async def forget_notes(self, room_id: str) -> None:
        """Let the room's note log go ``window_s`` from now (the room is saved)."""
        await self.redis.expire(_notes_key(room_id), max(1, int(self.window_s)))

    def drop(self, room_id: str) -> None:
        self._gaps.discard(room_id)


def _notes_key(room_id: str) -> str:
    return f"{PREFIX}{room_id}:notes"
