"""Worker processes for the CPU-heavy piece work (MIDI decoding, MusicXML conversion,
analysis, notes serialisation), so none of it runs on the event loop.

A thread would not do: decoding and analysis are pure Python, and some steps
(``xml.etree`` building a tree, ``bytes.decode``) are single C calls that
hold the GIL for as long as they run, blocking the loop all that time. The
pool is made on first use (processes are *spawned*: the server has threads)
and lives until the process exits; a worker that dies (killed, out of memory)
breaks the pool, which is then made anew for the next call. A worker whose
server died without shutting it down (SIGKILL) exits within a second.

Spawned workers import the main module again unless it is a package's
``__main__`` (``python -m server``) or a console script: a program that runs
the server from a script of its own must guard it with
``if __name__ == "__main__":``, as :mod:`multiprocessing` requires.
The first call pays for starting a worker (about 0.5 s of CPU, in the worker).

Two lanes, each a pool of its own: ``"pieces"`` (:func:`run`: decoding,
analysis, notes; up to two workers) and ``"notation"`` (:func:`run_in`: the
MIDI → MusicXML conversions, seconds each; one worker), so conversions never
queue ahead of a room's piece load or an upload's analysis; and ``"audio"``
(transcription steps of :mod:`server.services.audio_jobs`).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from rooms.errors import TuttiError

T = TypeVar("T")
MAX_WORKERS = max(1, min(2, os.cpu_count() or 1))
LANES = {"pieces": MAX_WORKERS, "notation": 1, "audio": 1}
"""Workers per lane (``"audio"``: set to ``--max-audio-jobs`` by
:class:`server.services.audio_jobs.AudioJobs` before its first use)."""

_lock = threading.Lock()
_pools: dict[str, ProcessPoolExecutor] = {}


def _start_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the server shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A server killed outright (SIGKILL, OOM) cannot: the worker leaves when it is orphaned.
    threading.Thread(target=_exit_with, args=(parent,), name="orphan-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _executor(lane: str) -> ProcessPoolExecutor:
    with _lock:
        pool = _pools.get(lane)
        if pool is None:
            pool = _pools[lane] = ProcessPoolExecutor(
                LANES[lane],
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return pool


def _discard(lane: str, pool: ProcessPoolExecutor) -> None:
    with _lock:
        if _pools.get(lane) is pool:
            del _pools[lane]
    pool.shutdown(wait=False, cancel_futures=True)


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """Runs in the worker: an error that is not a TuttiError comes back as a
    RuntimeError naming it (any exception must pickle, or the pool breaks)."""
    try:
        return fn(*args, **kwargs)
    except TuttiError:
        raise
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker process of the ``"pieces"`` lane (:func:`run_in`)."""
    return await run_in("pieces", fn, *args, **kwargs)


async def run_in(lane: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker process of ``lane`` (one of :data:`LANES`);
    its result or its exception.

    ``fn`` must be a module-level function and its arguments and result
    picklable. A :class:`rooms.errors.TuttiError` comes back as raised;
    another exception as ``RuntimeError``; a dead worker as
    :class:`concurrent.futures.process.BrokenProcessPool` (the next call gets
    a new pool).
    """
    pool = _executor(lane)
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, functools.partial(_call, fn, args, kwargs))
    except BrokenProcessPool:
        _discard(lane, pool)
        raise
