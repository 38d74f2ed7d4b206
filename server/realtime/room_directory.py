"""Rooms shared by several ``tutti serve`` processes through Redis (issue 4).

With ``--redis-url`` the :class:`server.realtime.clustered.ClusteredRoomService` keeps each
room's shared record here, so any process can serve a join, a start, a leave
or an end, and every process keeps a local replica (:class:`rooms.room.Room`)
for the players connected to it, whose notes it scores and records.

Keys (``{id}`` is the room id; every key expires ``ROOM_TTL_S`` after its
last write):

* ``tutti:room:{id}`` — JSON ``{"room": Room.snapshot(), "nodes": {user_id:
  node_id}}``: the room (piece, mode, tempo, count-in, host, start, members,
  parts, closed) and which process each member is connected to. Changed only
  under ``tutti:room:{id}:lock`` (a redis-py lock with a timeout), so joins,
  starts, leaves and ends from different processes are serialised: read,
  apply to the replica (:class:`Room` decides, as in one process), write.
* ``tutti:room:{id}:seq`` — INCRBY: the room's global note sequence.
* ``tutti:room:{id}:due`` — hash node → when that node's players' piece is
  over (epoch ms); a finish timer waits for the latest, so a slow player on
  one process holds the room open on every process.
* ``tutti:room:{id}:finishing`` — ``SET NX``: the session id of the one
  process that finishes the room; everyone else backs off (and takes over
  under that id if no ``room:finished`` came, see :meth:`RoomDirectory.claim_finish`).
* ``tutti:room:{id}:partials:{session}`` — list: each process's
  :class:`rooms.room.PlayerPartial` s (JSON), pushed on request.
* ``tutti:room:{id}:handoff`` — hash node → partials that a process left
  when it stopped (``SIGTERM``) with players of a room that goes on
  elsewhere; merged at the finish, and replayed into the scorer of a player
  who rejoins on another process.
* ``tutti:room:{id}:finished`` — the ``room:finished`` payload, once saved.
* ``tutti:room:{id}:stream`` / ``:epoch`` — the room's recovery stream
  (:mod:`server.realtime.recovery`, written by the room manager; expire after 120 s).
* ``tutti:room:{id}:notes`` / ``:notes:nodes`` — the room's note log (every
  accepted note, for the room's whole life) and which processes wrote to it
  (:mod:`server.realtime.recovery`).

After Redis lost its data (a restart), a process that misses a room's record
puts its replica back (:meth:`RoomDirectory.restore`, ``SET NX``), and the
note counter resumes ``SEQ_GAP`` past the last sequence number it issued.

Control messages travel on one pub/sub channel ``tutti:roomctl`` (JSON
``{"n": node, "r": room_id, "t": type, ...}``): ``changed`` (re-read the
record), ``collect`` (push your partials for session ``s``) and ``finished``
(``p``: the ``room:finished`` payload; deliver it to your members and let
the room go).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.realtime import redis_pool
from server.realtime.recovery import RedisStreams
from server.realtime.redis_batch import ScriptBatcher

log = logging.getLogger("tutti.rooms.directory")

PREFIX = "tutti:room:"
CONTROL = "tutti:roomctl"
ROOM_TTL_S = 24 * 3600
LOCK_TIMEOUT_S = 5.0
SEQ_GAP = 1000  # after Redis lost a room's note counter, it resumes this far past the known

_NEXT_SEQS = """
local cur = redis.call('GET', KEYS[1])
if cur then cur = tonumber(cur) else cur = tonumber(ARGV[2]) end
cur = cur + tonumber(ARGV[1])
redis.call('SET', KEYS[1], cur, 'EX', ARGV[3])
return cur
"""

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class RoomDirectory:
    """Shared room records, per-room locks and control messages in Redis."""

    def __init__(self, url: str, node_id: str | None = None) -> None:
        self.url = url
        self.node_id = node_id or uuid.uuid4().hex
        # A pooled connection that Redis closed (e.g. it restarted) fails once: retry.
        self.redis = redis_pool.client(
            url,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        # The recovery streams' appends go without a retry: a pipeline retried after a
        # connection error may have run on Redis already, and its XADDs then ran twice (seen
        # in CI: a reconnecting player got one note twice). A failed append leaves a gap.
        self._streams_redis = redis_pool.client(url)
        self._handler: Handler | None = None
        self._task: asyncio.Task | None = None
        self._next_seqs = self.redis.register_script(_NEXT_SEQS)
        self._batch = ScriptBatcher(self.redis)  # note seqs: one round trip for many notes

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, handler: Handler) -> None:
        """Listen to control messages (``handler`` gets other nodes' messages)."""
        self._handler = handler
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._listen(ready))
        try:  # Redis may be away: rooms then work on each process alone until it is back
            await asyncio.wait_for(asyncio.shield(ready), 3)
        except TimeoutError:
            log.warning("room control channel: Redis not reachable yet")

    def streams(self) -> RedisStreams:
        """The rooms' recovery streams in this Redis (their own client: no retries)."""
        return RedisStreams(self._streams_redis, node_id=self.node_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.redis.aclose()
        await self._streams_redis.aclose()

    async def _listen(self, ready: asyncio.Future) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CONTROL)
                if not ready.done():
                    ready.set_result(None)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    msg = orjson.loads(message["data"])
                    if msg.get("n") == self.node_id or self._handler is None:
                        continue
                    try:
                        await self._handler(msg)
                    except Exception:
                        log.exception("room control message %s failed", msg.get("t"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("room control channel lost Redis (%s); reconnecting", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(0.5)

    async def publish(self, room_id: str, kind: str, **fields: Any) -> None:
        await self.redis.publish(
            CONTROL, orjson.dumps({"n": self.node_id, "r": room_id, "t": kind, **fields})
        )

    # -- records ---------------------------------------------------------------------

    def lock(self, room_id: str):
        """The room's lock: ``async with directory.lock(room_id): ...``."""
        return self.redis.lock(
            f"{PREFIX}{room_id}:lock", timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S
        )

    async def load(self, room_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(PREFIX + room_id)
        return None if raw is None else orjson.loads(raw)

    async def store(self, room_id: str, record: dict[str, Any]) -> None:
        await self.redis.set(PREFIX + room_id, orjson.dumps(record), ex=ROOM_TTL_S)

    async def restore(self, room_id: str, record: dict[str, Any]) -> bool:
        """Put a lost record back (``SET NX``); ``False`` if another process did first."""
        return bool(
            await self.redis.set(PREFIX + room_id, orjson.dumps(record), ex=ROOM_TTL_S, nx=True)
        )

    async def next_seqs(self, room_id: str, count: int, known: int = 0) -> int:
        """Reserve ``count`` sequence numbers; returns the last one.

        ``known``: the last sequence number this process issued. If Redis lost
        the counter (restarted empty) it resumes after ``known + SEQ_GAP``, so
        sequence numbers stay unique and increasing (with a gap).
        """
        last = await self._batch.call(
            self._next_seqs,
            [f"{PREFIX}{room_id}:seq"],
            [count, known + SEQ_GAP if known > 0 else 0, ROOM_TTL_S],
        )
        return int(last)

    async def set_due(self, room_id: str, due_ms: float) -> None:
        key = f"{PREFIX}{room_id}:due"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, self.node_id, repr(float(due_ms)))
            pipe.expire(key, ROOM_TTL_S)
            await pipe.execute()

    async def latest_due(self, room_id: str) -> float | None:
        values = await self.redis.hvals(f"{PREFIX}{room_id}:due")
        return max((float(v) for v in values), default=None)

    # -- finishing -------------------------------------------------------------------

    async def claim_finish(self, room_id: str, session_id: str) -> str | None:
        """Become the one process that finishes the room; ``None`` if another did.

        Claiming with the session id already claimed wins too: a process that
        takes over the finish of a process that died adopts its session id
        (saves are idempotent by session id, so the room is saved once).
        """
        key = f"{PREFIX}{room_id}:finishing"
        won = await self.redis.set(key, session_id, nx=True, ex=ROOM_TTL_S)
        if not won and await self.finishing_session(room_id) == session_id:
            return session_id
        return session_id if won else None

    async def claim_age_s(self, room_id: str) -> float | None:
        """How long ago the room's finish was claimed (s), ``None`` when it was not."""
        ttl = await self.redis.ttl(f"{PREFIX}{room_id}:finishing")
        return None if ttl < 0 else float(ROOM_TTL_S - ttl)

    async def finishing_session(self, room_id: str) -> str | None:
        raw = await self.redis.get(f"{PREFIX}{room_id}:finishing")
        return None if raw is None else raw.decode()

    async def push_partials(self, room_id: str, session_id: str, partials: list[dict]) -> None:
        key = f"{PREFIX}{room_id}:partials:{session_id}"
        body = orjson.dumps({"n": self.node_id, "partials": partials})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, body)
            pipe.expire(key, 600)
            await pipe.execute()

    async def gather_partials(
        self, room_id: str, session_id: str, nodes: set[str], timeout_s: float
    ) -> list[dict]:
        """Wait until each of ``nodes`` pushed its partials (or ``timeout_s``); return all."""
        key = f"{PREFIX}{room_id}:partials:{session_id}"
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            got = [orjson.loads(x) for x in await self.redis.lrange(key, 0, -1)]
            missing = nodes - {g["n"] for g in got}
            if not missing or asyncio.get_running_loop().time() >= deadline:
                if missing:
                    log.warning(
                        "room %s: no partial results from %s; rebuilt from the note log",
                        room_id,
                        sorted(missing),
                    )
                return [p for g in got for p in g["partials"]]
            await asyncio.sleep(0.02)

    async def hand_off(self, room_id: str, partials: list[dict]) -> None:
        """A stopping process leaves its players' partials for the others."""
        key = f"{PREFIX}{room_id}:handoff"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, self.node_id, orjson.dumps(partials))
            pipe.expire(key, ROOM_TTL_S)
            await pipe.execute()

    async def handed_off(self, room_id: str) -> list[dict]:
        """Every partial stopped processes left for ``room_id``."""
        values = await self.redis.hvals(f"{PREFIX}{room_id}:handoff")
        return [p for v in values for p in orjson.loads(v)]

    async def set_finished(self, room_id: str, payload: dict[str, Any]) -> None:
        await self.redis.set(f"{PREFIX}{room_id}:finished", orjson.dumps(payload), ex=ROOM_TTL_S)

    async def wait_finished(self, room_id: str, timeout_s: float) -> dict[str, Any] | None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            raw = await self.redis.get(f"{PREFIX}{room_id}:finished")
            if raw is not None:
                return orjson.loads(raw)
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.05)
