"""Redis clients whose pool waits for a free connection instead of failing.

redis-py 7+ caps a plain :class:`redis.asyncio.ConnectionPool` at 100
connections and raises ``MaxConnectionsError`` at once when more commands
are in flight — under a burst of notes (two processes, hundreds of rooms)
that turned into ``internal_error`` acks. A
:class:`redis.asyncio.BlockingConnectionPool` queues the command until a
connection is free (up to ``timeout`` s, then ``ConnectionError``).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

MAX_CONNECTIONS = 256  # per client and process; Redis' own default limit is 10 000
WAIT_S = 5.0  # the longest a command waits for a pooled connection, s


def client(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio Redis client for ``url``; ``kwargs`` as for ``redis.asyncio.from_url``."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_S, **kwargs
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
