"""Socket.IO guards: connection caps and per-connection rate limits.

:class:`Guard` is asked by :class:`server.realtime.namespace.TuttiNamespace`
before anything else happens:

* at ``connect`` (:meth:`Guard.refuse_connect`), with the claims of the
  token the namespace verified: refused (``connect_error`` data ``{"code",
  "message"}``) with ``account_deleted`` for a deactivated user and
  ``too_many_connections`` when the user already has
  ``max_connections_per_user`` connections on this process;
* at every client event (:meth:`Guard.over_limit`): the per-connection limits
  of :mod:`server.services.limits`. ``note``/``notes`` take their events (a
  batch costs its length, at most 64) from the note quota, ``clock`` one from
  the clock limit, every other event one from the event limit. Over a limit
  the ack is ``{"error": {"code": "rate_limited", "message", "retry_after"}}``
  (s) and nothing else happens;
* every refusal then counts against ``max_refusals``
  (:meth:`server.realtime.transport.TuttiServer.count_refusal`): a connection
  refused more often (``50/10seconds``: a client that waits ``retry_after``
  is refused a few times, a flood thousands) keeps hammering and is closed
  (``too_many_refusals``, logged).

Private rooms and the spectator cap are room rules: :mod:`rooms.admission`.
"""

from __future__ import annotations

from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.config import Settings
from server.services.limits import RateLimiter
from server.services.limits_counter import record_rejection
from server.services.privacy import is_deactivated

NOTE_EVENTS = ("note", "notes")
# Clock samples come in bursts (8 at a connect) then one every 2 s: a limit of their own,
# so a sync client's outbox catching up does not take them away (and the reverse).
CLOCK_EVENTS = ("clock",)


def refusal(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """An error ack: ``{"error": {"code", "message", **extra}}``."""
    return {"error": {"code": code, "message": message, **extra}}


class Guard:
    """The limits every connection and event passes first (see module)."""

    def __init__(
        self,
        limiter: RateLimiter,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.limiter = limiter
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def refuse_connect(self, user_id: str, connections: int) -> None:
        """Raise ``socketio.exceptions.ConnectionRefusedError`` (``account_deleted``,
        ``too_many_connections``) for ``user_id``, who has ``connections`` here already."""
        if await is_deactivated(self.sessionmaker, user_id):
            raise socketio.exceptions.ConnectionRefusedError(
                "this account was deleted",
                {"code": "account_deleted", "message": "this account was deleted"},
            )
        cap = self.settings.max_connections_per_user
        if connections >= cap:
            record_rejection("connections")
            message = f"at most {cap} connections per user; close another device or tab first"
            raise socketio.exceptions.ConnectionRefusedError(
                message, {"code": "too_many_connections", "message": message}
            )

    async def over_limit(self, event: str, sid: str, data: Any) -> dict[str, Any] | None:
        """The ``rate_limited`` error ack when ``event`` from ``sid`` is over its limit."""
        if event in CLOCK_EVENTS:
            wait = await self.limiter.hit("clock", sid)
            what = "clock exchanges"
        elif event in NOTE_EVENTS:
            cost = 1
            if event == "notes" and isinstance(data, dict) and isinstance(data.get("events"), list):
                cost = max(1, min(len(data["events"]), 64))  # more is refused by validation
            wait = await self.limiter.hit("notes", sid, cost)
            what = "notes"
        else:
            wait = await self.limiter.hit("events", sid)
            what = "events"
        if wait is None:
            return None
        return refusal(
            "rate_limited",
            f"too many {what} on this connection; try again in {wait:.2f} s",
            retry_after=round(wait, 3),
        )
