"""SIGTERM stops a server that has live websockets: it drains, stops engine.io's service
task and exits 0, within its shutdown bound (``--shutdown-timeout-s``)."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.play import connected
from tests.servers import start_server


async def test_sigterm_with_live_websockets_exits_cleanly(tmp_path):
    proc = start_server(tmp_path / "data", "--shutdown-timeout-s", "10")
    clients = [await connected(proc.url, f"player{i}") for i in range(3)]
    await asyncio.sleep(1.0)  # engine.io's service task is now pinging the sockets
    started = time.monotonic()
    code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 30.0)
    took = time.monotonic() - started
    for client in clients:
        await client.disconnect()
    assert code == 0, proc.log.read_text()[-2000:]
    assert took < 30.0
