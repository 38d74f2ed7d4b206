"""The room service's clocks: background tasks, finish timers and the score throttle.

* :class:`Tasks` runs coroutines in the background and logs their failures.
* :class:`FinishTimers`: one timer per room, set for the room's due time
  (Unix epoch ms), calling a check that finishes the room or sets it again.
* :class:`ScoreThrottle`: at most one ``score:update`` per player per
  interval (ms), and always one after the player's last note.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("tutti.rooms")


def now_ms() -> float:
    """The server clock: Unix epoch milliseconds."""
    return time.time() * 1000.0


class Tasks:
    """Background tasks of this process; a failure is logged with its traceback."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background (needs a running event loop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())


class FinishTimers:
    """One pending finish check per room."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def schedule(self, room_id: str, due_ms: float, check: Callable[[], Awaitable[None]]) -> None:
        """Run ``check()`` at ``due_ms`` (epoch ms; now if past), replacing a pending one."""
        self.cancel(room_id)
        delay = max(0.0, (due_ms - now_ms()) / 1000.0)
        loop = asyncio.get_running_loop()
        self._timers[room_id] = loop.call_later(delay, lambda: self.tasks.spawn(check()))

    def cancel(self, room_id: str) -> None:
        """Forget ``room_id``'s pending check, if any."""
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()


class ReconnectGrace:
    """Members whose connection dropped, each held ``grace_s`` (s) before leaving.

    Meanwhile the member keeps their part, role and the host role, and the
    room stays open; a join from a new connection resumes the membership
    (:meth:`resume`). ``grace_s`` 0 lets a dropped member leave at once.
    """

    def __init__(self, tasks: Tasks, grace_s: float) -> None:
        if grace_s < 0:
            raise ValueError(f"reconnect grace must be >= 0 s, got {grace_s!r}")
        self.tasks = tasks
        self.grace_s = grace_s
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def hold(self, room_id: str, user_id: str, release: Callable[[], Awaitable[None]]) -> None:
        """Run ``release()`` after the grace period unless :meth:`resume` comes first."""
        self.resume(room_id, user_id)
        key = (room_id, user_id)

        def expire() -> None:
            self._timers.pop(key, None)
            self.tasks.spawn(release())

        self._timers[key] = asyncio.get_running_loop().call_later(self.grace_s, expire)

    def is_away(self, room_id: str, user_id: str) -> bool:
        """Whether the user's connection to ``room_id`` dropped within the grace period."""
        return (room_id, user_id) in self._timers

    def resume(self, room_id: str, user_id: str) -> None:
        """The user is back (or gone for good): forget the pending release."""
        timer = self._timers.pop((room_id, user_id), None)
        if timer is not None:
            timer.cancel()

    def forget_room(self, room_id: str) -> None:
        """The room finished or vanished: no member of it is held any longer."""
        for key in [k for k in self._timers if k[0] == room_id]:
            self._timers.pop(key).cancel()


class ScoreThrottle:
    """At most one send per (room, player) every ``interval_ms``; always one after the last."""

    def __init__(self, interval_ms: float, tasks: Tasks) -> None:
        self.interval_s = interval_ms / 1000.0
        self.tasks = tasks
        self._last: dict[tuple[str, str], float] = {}  # loop time, s
        self._pending: set[tuple[str, str]] = set()

    def schedule(self, room_id: str, user_id: str, send: Callable[[], Awaitable[None]]) -> None:
        """Call ``send()`` as soon as the interval allows, unless one is already pending."""
        key = (room_id, user_id)
        if key in self._pending:
            return
        self._pending.add(key)
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last.get(key, 0.0) + self.interval_s - loop.time())
        loop.call_later(delay, lambda: self.tasks.spawn(self._send(key, send)))

    async def _send(self, key: tuple[str, str], send: Callable[[], Awaitable[None]]) -> None:
        self._pending.discard(key)
        self._last[key] = asyncio.get_running_loop().time()
        await send()

    def forget(self, room_id: str) -> None:
        """Drop ``room_id``'s players' last send times (the room is gone)."""
        for key in [k for k in self._last if k[0] == room_id]:
            del self._last[key]
