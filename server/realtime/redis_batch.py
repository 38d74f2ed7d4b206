"""Automatic pipelining of Lua script calls: one Redis round trip for many callers.

With several processes every relayed note costs two script calls (the
room's note sequence, :mod:`server.realtime.room_directory`, and its recovery-stream
append, :mod:`server.realtime.recovery`). Issued one by one, each pays a round trip
and redis-py's per-command overhead (connection checkout, reply parsing):
in the relay benchmark's profile of two processes (``loadtests/bench/relay.py
--cases cluster``, py-spy) the Redis client was about 40 % of each process.
:class:`ScriptBatcher` queues the calls made while a batch is in flight and
sends them together in one non-transactional pipeline (the technique of
ioredis' ``enableAutoPipelining``): one caller alone still gets its answer
after one round trip; under load, hundreds share one.

Order: one batch is in flight at a time and calls run in the order they
were made. Errors: each caller gets its own command's error; a connection
error fails every call of the batch (callers handle ``RedisError`` /
``OSError`` as before). A script Redis does not know (it restarted) is
loaded and the affected calls are run again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError


class ScriptBatcher:
    """Run ``script(keys, args)`` calls on ``redis`` in shared pipelines (see module)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._pending: list[tuple[Any, list, list, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.batches = self.calls = 0  # for measurements

    async def call(self, script: Any, keys: list, args: list) -> Any:
        """``script`` is a redis-py ``AsyncScript`` (``register_script``); its reply."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if self._task is None:
            self._task = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._run(batch)
        finally:
            self._task = None

    async def _run(self, batch: list[tuple[Any, list, list, asyncio.Future]]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for script, keys, args, _ in batch:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
            if any(isinstance(r, NoScriptError) for r in results):
                results = await self._reload(batch, results)
        except asyncio.CancelledError:
            for *_, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:  # the connection failed: every call of the batch fails
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _reload(self, batch, results: list) -> list:
        # Redis lost its scripts (e.g. restarted empty): load them, run those calls again.
        for script in {id(s): s for s, *_ in batch}.values():
            script.sha = await self.redis.script_load(script.script)
        out = list(results)
        for i, ((script, keys, args, _), result) in enumerate(zip(batch, results, strict=True)):
            if isinstance(result, NoScriptError):
                try:
                    out[i] = await self.redis.evalsha(script.sha, len(keys), *keys, *args)
                except Exception as exc:  # handed to that caller
                    out[i] = exc
        return out
