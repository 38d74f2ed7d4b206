"""Rate limits with the ``limits`` library: scopes, keys and the limiter (no web code).

Each *scope* has one or more limits in the library's notation, separated by
``;`` (``"400/2seconds;3000/20seconds"``): a request or event is allowed only
if every limit of its scope has room. A short window with a high count is the
burst allowance, a long window with a lower rate the steady rate (the shape
of the note quotas of public multiplayer piano servers). The strategy is
``limits``' sliding window counter: the current window's count plus the
previous window's, weighted by how much of it still overlaps the last
window length — O(1) per hit and one Redis round trip. The per-connection
scopes (``events``, ``notes``, ``clock``, ``refusals``) live in the process
and use an exact moving window with the semantics of the library's
``MovingWindowRateLimiter`` in a cheaper structure
(:class:`server.services.moving_window.MovingWindow`: a deque per key, no
lock, no list insertions; the library's asyncio API cost 17 µs a note, its
synchronous one 9 µs). The REST scopes' in-memory storage sweeps expired
windows once a second, not after every hit (:class:`SweepingMemoryStorage`).

Scopes and keys:

* ``rest_user`` — REST requests under ``/api/`` with a valid bearer token,
  keyed by a keyed hash of the user id (:func:`pseudonym`); ``rest_ip`` —
  every REST request under ``/api/``, keyed by the client IP.
  ``GET /api/health`` is exempt (probes). Stored in Redis
  (``tutti:limits:…`` keys) when ``redis_url`` is set, so every process
  shares one count; otherwise in the process.
* ``events`` — Socket.IO events other than notes and clock exchanges, per
  connection; ``notes`` — note events (a ``notes`` batch costs its number of
  events), per connection; ``clock`` — ``clock`` exchanges, per connection;
  ``refusals`` — the refusals of a connection (over the other limits, or a
  malformed packet): past it the connection is closed
  (:mod:`server.realtime.guard`). A connection lives in one process, so these
  are always in the process's memory (no Redis round trip on the note path).

Over a limit: REST answers ``429`` with ``Retry-After`` (s) and
``{"error": {"code": "rate_limited", "message", "retry_after"}}``; Socket.IO
acks ``{"error": {"code": "rate_limited", "message", "retry_after"}}`` and the
connection stays open. Each refusal is counted
(:func:`server.services.limits_counter.record_rejection`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from server.config import Settings
from server.services.limits_counter import record_rejection
from server.services.moving_window import MovingWindow

log = logging.getLogger("tutti.limits")

SCOPES = ("rest_user", "rest_ip", "events", "notes", "clock", "refusals")
SHARED_SCOPES = ("rest_user", "rest_ip")  # in Redis when there is one
EXEMPT_PATHS = frozenset({"/api/health"})


SWEEP_EVERY_S = 1.0  # how often the in-memory storages sweep expired windows


def _sweep_due(storage) -> bool:
    now = time.monotonic()
    if now < getattr(storage, "_next_sweep", 0.0):
        return False
    storage._next_sweep = now + SWEEP_EVERY_S
    return True


class SweepingMemoryStorage(MemoryStorage):
    """``limits``' in-memory storage, sweeping expired windows at most once a second.

    The stock storage starts a sweep of every key (one thread hop per key)
    after each hit: at note rates that costs ~0.2 ms a note. Windows stay
    exact without sweeps (a hit looks at its own window's entries); sweeps
    only free memory, so once a second is plenty. Hooks the storage's
    private ``__schedule_expiry`` (limits 5.x); without it, stock behaviour.
    """

    async def _MemoryStorage__schedule_expiry(self) -> None:
        if _sweep_due(self):
            await MemoryStorage._MemoryStorage__schedule_expiry(self)


def parse_limits(name: str, spec: str) -> list[RateLimitItem]:
    """The limits of a setting (``""`` → none). Raises ``ValueError`` naming the setting."""
    if not spec.strip():
        return []
    try:
        return parse_many(spec)
    except ValueError as exc:
        example = "'10/second;100/minute'"
        raise ValueError(f"{name}={spec!r} is not a rate limit like {example}") from exc


class RateLimiter:
    """The limits of every scope, checked with :meth:`hit`."""

    def __init__(self, settings: Settings) -> None:
        self.items = {
            "rest_user": parse_limits("rate_limit_rest_user", settings.rate_limit_rest_user),
            "rest_ip": parse_limits("rate_limit_rest_ip", settings.rate_limit_rest_ip),
            "events": parse_limits("rate_limit_events", settings.rate_limit_events),
            "notes": parse_limits("note_quota", settings.note_quota),
            "clock": parse_limits("rate_limit_clock", settings.rate_limit_clock),
            "refusals": parse_limits("max_refusals", settings.max_refusals),
        }
        # In-process scopes need no I/O: an exact moving window of our own (moving_window.py).
        self._local = MovingWindow()
        self._shared = None  # REST scopes: asyncio API, in Redis when there is one
        if settings.redis_url:
            uri = "async+" + settings.redis_url
            storage = RedisStorage(uri, implementation="redispy", key_prefix="tutti:limits")
            self._shared = SlidingWindowCounterRateLimiter(storage)
        else:
            self._shared = SlidingWindowCounterRateLimiter(SweepingMemoryStorage())

    async def hit(self, scope: str, key: str, cost: int = 1) -> float | None:
        """Take ``cost`` from every limit of ``scope`` for ``key``.

        Returns ``None`` when allowed, else the seconds until the refusing
        window has room again (and counts the refusal). A storage failure
        (Redis away) lets the request through, logged: limits must not take
        the service down.
        """
        if scope not in SHARED_SCOPES:
            for item in self.items[scope]:
                wait = self._local.hit(item, scope, key, cost)
                if wait is not None:
                    record_rejection(scope)
                    return max(0.001, wait)
            return None
        for item in self.items[scope]:
            try:
                if await self._shared.hit(item, scope, key, cost=cost):
                    continue
                stats = await self._shared.get_window_stats(item, scope, key)
            except Exception as exc:  # noqa: BLE001 - any storage error: fail open
                log.warning("rate limit storage failed (%s); allowing", exc)
                return None
            record_rejection(scope)
            return max(0.001, stats.reset_time - time.time())
        return None


def pseudonym(secret: str, user_id: str) -> str:
    """The user's rate-limit key: an HMAC-SHA256 of the id (96 bits), not the id itself,
    so limit windows (in Redis for up to their length) never name a user."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:24]
