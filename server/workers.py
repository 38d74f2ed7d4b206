"""``tutti serve --workers N``: N server processes on one port, sharing rooms over Redis.

The supervisor starts N copies of ``tutti serve`` (each ``--workers 1
--websocket-only``) that bind the same address with ``SO_REUSEPORT``: the
kernel spreads new connections over them. Rooms are shared through Redis as
between any processes of a cluster (``--redis-url``). A websocket stays on the
process that accepted it; long polling would not (its requests could reach
another process), so the workers take websockets only.

The supervisor restarts a worker that exits on its own (at most once a
second per worker), forwards SIGTERM/SIGINT to all of them and waits at most
``shutdown_timeout_s`` + 5 s before killing what is left. It exits 0 when
every worker stopped cleanly, else 1.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from server.config import Settings

RESTART_MIN_INTERVAL_S = 1.0


def worker_command(argv: list[str]) -> list[str]:
    """The command of one worker: this ``serve`` command line, one process, websockets only."""
    return [sys.executable, "-m", "server", *argv, "--workers", "1", "--websocket-only"]


def supervise(settings: Settings, argv: list[str], count: int) -> int:
    """Run ``count`` workers of ``argv`` (``["serve", ...]``) until SIGTERM/SIGINT; exit status."""
    command = worker_command(argv)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = [subprocess.Popen(command) for _ in range(count)]
    started = [time.monotonic()] * count
    print(
        f"Tutti listening on http://{settings.host}:{settings.port} ({count} workers)",
        flush=True,
    )
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(workers):
            if proc.poll() is not None and not stopping:
                wait = RESTART_MIN_INTERVAL_S - (time.monotonic() - started[i])
                print(
                    f"tutti serve: worker {proc.pid} exited with {proc.returncode}; restarting",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(max(0.0, wait))
                workers[i] = subprocess.Popen(command)
                started[i] = time.monotonic()
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_timeout_s + 5
    clean = True
    for proc in workers:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # -SIGTERM: a worker still starting (no handler yet) stopped as asked.
        ok = proc.returncode in (0, -signal.SIGTERM)
        if not ok:
            print(f"tutti serve: worker {proc.pid} exited with {proc.returncode}", file=sys.stderr)
        clean = clean and ok
    return 0 if clean else 1
