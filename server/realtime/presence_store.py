"""Where presence keeps devices' metas: in memory (:class:`LocalStore`) or in Redis.

:class:`RedisStore` (several processes) uses these keys:

* ``tutti:presence:user:{user_id}`` — hash, device_id → entry (JSON:
  ``user_id``, ``sid``, ``node``, ``room``, ``member``, ``meta``);
* ``tutti:presence:room:{room_id}`` — hash, ``member`` → entry, for the devices
  in the room (``member`` is ``[user_id, device_id]`` as JSON);
* ``tutti:presence:node:{node_id}`` — the process's heartbeat, set with a TTL
  of 15 s (:data:`HEARTBEAT_TTL_S`);
* ``tutti:presence:node:{node_id}:devices`` — set of the node's members;
  ``tutti:presence:nodes`` — set of node ids.

A node whose heartbeat key has expired is reaped by a Lua script (atomic, so
exactly one process gets its entries). Every write is a Lua script, so the
user, room and node keys never disagree. (The scripts build key names from a
prefix: fine for a single Redis server, not for Redis Cluster.) Redis calls
time out after :data:`REDIS_TIMEOUT_S` (s) and raise ``RedisError``/``OSError``;
:class:`server.realtime.presence.Presence` logs them and retries.
"""

from __future__ import annotations

import json
import logging
import time

from rooms.presence import Meta, State, Tracker, topic_state
from server.realtime import redis_pool

log = logging.getLogger("tutti.presence")

PREFIX = "tutti:presence:"
HEARTBEAT_TTL_S = 15  # a node's heartbeat key lives this long (s)...
REDIS_TIMEOUT_S = 2.0


def now_ms() -> int:
    """Unix epoch ms (an ``online_at``)."""
    return int(time.time() * 1000)


class PresenceStore:
    """Where devices' metas are kept: one process (:class:`LocalStore`) or Redis."""

    node_id: str
    heartbeats = False  # whether :meth:`heartbeat` and :meth:`reap` need calling

    async def start(self) -> None:
        """Connect."""

    async def stop(self) -> list[tuple[str, Meta]]:
        """Forget this node's devices and disconnect; returns ``(user_id, meta)`` dropped."""
        return []

    async def put(
        self, user_id: str, meta: Meta, *, sid: str, takeover: bool
    ) -> tuple[bool, Meta | None]:
        """Track or update a device for connection ``sid``; returns ``(written, old meta)``.

        With ``takeover`` false, a device owned by another connection is left
        as it is (``written`` false).
        """
        raise NotImplementedError

    async def remove(self, user_id: str, device_id: str, *, sid: str) -> Meta | None:
        """Untrack a device if connection ``sid`` owns it; returns the meta removed."""
        raise NotImplementedError

    async def state(self, topic: str) -> State:
        """The state of ``topic``."""
        raise NotImplementedError

    async def heartbeat(self) -> bool:
        """Tell the others this node lives; True if its heartbeat had lapsed meanwhile."""
        return False

    async def reap(self) -> list[tuple[str, Meta]]:
        """Drop the devices of dead nodes; returns ``(user_id, meta)`` dropped."""
        return []


class LocalStore(PresenceStore):
    """Every device of this single process, in memory."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.tracker = Tracker()
        self._owners: dict[tuple[str, str], str] = {}  # (user_id, device_id) -> sid

    async def put(
        self, user_id: str, meta: Meta, *, sid: str, takeover: bool
    ) -> tuple[bool, Meta | None]:
        key = (user_id, meta["device_id"])
        owner = self._owners.get(key)
        if owner is not None and owner != sid and not takeover:
            return False, None
        self._owners[key] = sid
        old, _ = self.tracker.put(user_id, meta)
        return True, old

    async def remove(self, user_id: str, device_id: str, *, sid: str) -> Meta | None:
        key = (user_id, device_id)
        if self._owners.get(key) != sid:
            return None
        del self._owners[key]
        old, _ = self.tracker.remove(user_id, device_id)
        return old

    async def state(self, topic: str) -> State:
        return self.tracker.state(topic)


# KEYS: none (names are built from the prefix). Entries are stored verbatim as the
# JSON Python wrote; the scripts decode them only to read sid, node, room and member.
_PUT = """
local p, uid, did, raw, takeover, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ukey = p .. 'user:' .. uid
local new = cjson.decode(raw)
local old = redis.call('HGET', ukey, did)
if old then
  local o = cjson.decode(old)
  if takeover ~= '1' and o.sid ~= sid then return {0, old} end
  if o.room ~= '' then redis.call('HDEL', p .. 'room:' .. o.room, o.member) end
  redis.call('SREM', p .. 'node:' .. o.node .. ':devices', o.member)
end
redis.call('HSET', ukey, did, raw)
if new.room ~= '' then redis.call('HSET', p .. 'room:' .. new.room, new.member, raw) end
redis.call('SADD', p .. 'node:' .. new.node .. ':devices', new.member)
return {1, old}
"""

_REMOVE = """
local p, uid, did, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ukey = p .. 'user:' .. uid
local old = redis.call('HGET', ukey, did)
if not old then return false end
local o = cjson.decode(old)
if o.sid ~= sid then return false end
redis.call('HDEL', ukey, did)
if o.room ~= '' then redis.call('HDEL', p .. 'room:' .. o.room, o.member) end
redis.call('SREM', p .. 'node:' .. o.node .. ':devices', o.member)
return old
"""

# Drop every device of node ARGV[2] unless its heartbeat is back (ARGV[3] = '1': drop anyway).
_REAP = """
local p, node, force = ARGV[1], ARGV[2], ARGV[3]
if force ~= '1' and redis.call('EXISTS', p .. 'node:' .. node) == 1 then return {} end
local skey = p .. 'node:' .. node .. ':devices'
local removed = {}
for _, member in ipairs(redis.call('SMEMBERS', skey)) do
  local pair = cjson.decode(member)
  local ukey = p .. 'user:' .. pair[1]
  local old = redis.call('HGET', ukey, pair[2])
  if old then
    local o = cjson.decode(old)
    if o.node == node then
      redis.call('HDEL', ukey, pair[2])
      if o.room ~= '' then redis.call('HDEL', p .. 'room:' .. o.room, o.member) end
      table.insert(removed, old)
    end
  end
end
redis.call('DEL', skey)
redis.call('SREM', p .. 'nodes', node)
return removed
"""


class RedisStore(PresenceStore):
    """Devices of every process in Redis, with per-node heartbeats (see the module doc)."""

    heartbeats = True

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        prefix: str = PREFIX,
        ttl_s: int = HEARTBEAT_TTL_S,
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.redis = redis_pool.client(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self._put = self.redis.register_script(_PUT)
        self._remove = self.redis.register_script(_REMOVE)
        self._reap = self.redis.register_script(_REAP)
        self._beaten = False

    @property
    def heartbeat_key(self) -> str:
        return f"{self.prefix}node:{self.node_id}"

    async def start(self) -> None:
        await self.heartbeat()

    async def stop(self) -> list[tuple[str, Meta]]:
        try:
            await self.redis.delete(self.heartbeat_key)
            removed = await self._reap(args=[self.prefix, self.node_id, "1"])
            return [self._parsed(raw) for raw in removed]
        finally:
            await self.redis.aclose()

    async def put(
        self, user_id: str, meta: Meta, *, sid: str, takeover: bool
    ) -> tuple[bool, Meta | None]:
        entry = {
            "user_id": user_id,
            "sid": sid,
            "node": self.node_id,
            "room": meta["room_id"] or "",
            "member": json.dumps([user_id, meta["device_id"]], separators=(",", ":")),
            "meta": meta,
        }
        args = [self.prefix, user_id, meta["device_id"], json.dumps(entry), "1" if takeover else ""]
        written, old = await self._put(args=[*args, sid])
        return bool(written), self._parsed(old)[1] if old else None

    async def remove(self, user_id: str, device_id: str, *, sid: str) -> Meta | None:
        old = await self._remove(args=[self.prefix, user_id, device_id, sid])
        return self._parsed(old)[1] if old else None

    async def state(self, topic: str) -> State:
        entries = [self._parsed(raw) for raw in await self.redis.hvals(self.prefix + topic)]
        return topic_state(entries, topic)

    async def heartbeat(self) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.heartbeat_key, now_ms(), ex=self.ttl_s, get=True)
            pipe.sadd(f"{self.prefix}nodes", self.node_id)
            previous, _ = await pipe.execute()
        lapsed = self._beaten and previous is None
        self._beaten = True
        return lapsed

    async def reap(self) -> list[tuple[str, Meta]]:
        nodes = sorted(await self.redis.smembers(f"{self.prefix}nodes"))
        others = [n for n in nodes if n != self.node_id]
        if not others:
            return []
        alive = await self.redis.mget([f"{self.prefix}node:{n}" for n in others])
        removed: list[tuple[str, Meta]] = []
        for node, beat in zip(others, alive, strict=True):
            if beat is None:
                dropped = [
                    self._parsed(raw) for raw in await self._reap(args=[self.prefix, node, ""])
                ]
                if dropped:
                    log.info("reaped %d device(s) of dead node %s", len(dropped), node)
                removed.extend(dropped)
        return removed

    @staticmethod
    def _parsed(raw: str) -> tuple[str, Meta]:
        entry = json.loads(raw)
        return entry["user_id"], entry["meta"]
