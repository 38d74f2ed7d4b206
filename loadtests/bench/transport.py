"""Transport attacks against a real server, with a bystander timing ``GET /api/health``.

``python -m loadtests.bench.transport`` starts ``tutti serve`` with the
default settings and runs, one after the other:

* **binary**: one connection announces 451 000 000 binary attachments
  (``451000000-["clock",{"_placeholder":true,"num":0}]``) and sends up to
  ``--frames`` frames of 900 KB; the server's RSS before and after (MB) and
  how many frames were sent before the server closed the socket;
* **clock flood**: ``--flooders`` connections of one guest send ``clock``
  events as fast as they can for ``--seconds`` s, without waiting for acks;
  events sent, answered, refused, and when each connection was closed;
* **junk**: one connection sends malformed packets until it is closed; the
  server's log lines about them.

During each, a thread times ``GET /api/health`` every 20 ms
(:class:`tests.hostile.Watchdog`): p50 and worst, ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.e2e.test_raw_packets import RawSocket
from tests.hostile import Watchdog
from tests.play import connected
from tests.servers import start_server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def health_ms(dog: Watchdog) -> str:
    ms = [x * 1000 for x in dog.latencies]
    return f"health p50 {statistics.median(ms):.1f} ms, worst {max(ms):.1f} ms"


async def reader(sock: RawSocket, counts: dict) -> None:
    """Count acks and refusals until the socket closes."""
    while True:
        try:
            msg = await sock.ws.receive()
        except Exception:  # noqa: BLE001 - closed under us
            break
        if not isinstance(msg.data, str):
            break
        if msg.data == "2":
            await sock.ws.send_str("3")
        elif msg.data.startswith("43"):
            counts["refused" if "error" in msg.data else "answered"] += 1
        elif "connection:closed" in msg.data:
            counts["closed_at"] = time.monotonic()
    counts.setdefault("closed_at", time.monotonic())
    counts["socket_closed"] = True


async def binary(url: str, pid: int, frames: int) -> str:
    client = await connected(url, "Binary")
    sock = await RawSocket.open(url, client.token)
    before = rss_mb(pid)
    sent = 0
    with Watchdog(url) as dog:
        await sock.ws.send_str('451000000-["clock",{"_placeholder":true,"num":0}]')
        frame = bytes(900_000)
        for _ in range(frames):
            if sock.ws.closed:
                break
            try:
                await asyncio.wait_for(sock.ws.send_bytes(frame), 10)
            except Exception:  # noqa: BLE001 - the server closed the socket
                break
            sent += 1
        await asyncio.sleep(1.0)
    after = rss_mb(pid)
    await sock.close()
    await client.disconnect()
    return (
        f"binary: {sent} of {frames} frames of 900 KB sent; RSS {before:.0f} → {after:.0f} MB; "
        + health_ms(dog)
    )


async def clock_flood(url: str, flooders: int, seconds: float) -> str:
    guest = await connected(url, "Flood")
    socks = [await RawSocket.open(url, guest.token) for _ in range(flooders)]
    counts = [{"answered": 0, "refused": 0} for _ in socks]
    readers = [asyncio.create_task(reader(s, c)) for s, c in zip(socks, counts, strict=True)]
    sent = [0] * flooders
    began = time.monotonic()

    async def flood(i: int) -> None:
        sock = socks[i]
        while time.monotonic() - began < seconds and not sock.ws.closed:
            try:
                await sock.ws.send_str(f'42{sent[i] + 1}["clock",{{"t0":1}}]')
            except Exception:  # noqa: BLE001 - closed
                return
            sent[i] += 1
            if sent[i] % 50 == 0:
                await asyncio.sleep(0)

    with Watchdog(url) as dog:
        await asyncio.gather(*(flood(i) for i in range(flooders)))
        await asyncio.sleep(1.0)
    for sock, task in zip(socks, readers, strict=True):
        await sock.close()
        task.cancel()
    cut = [f"{c['closed_at'] - began:.2f} s" if c.get("socket_closed") else "never" for c in counts]
    await guest.disconnect()
    return (
        f"clock flood ({flooders} connections, {seconds:.0f} s): sent {sum(sent)}, "
        f"answered {sum(c['answered'] for c in counts)}, refused "
        f"{sum(c['refused'] for c in counts)}, closed after {', '.join(cut)}; " + health_ms(dog)
    )


async def junk(url: str, log: Path) -> str:
    client = await connected(url, "Junk")
    sock = await RawSocket.open(url, client.token)
    lines_before = len(log.read_text().splitlines())
    sent = 0
    with Watchdog(url) as dog:
        for _ in range(1000):
            if sock.ws.closed:
                break
            try:
                await sock.ws.send_str("4x")
            except Exception:  # noqa: BLE001 - closed
                break
            sent += 1
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.5)
    lines = log.read_text().splitlines()[lines_before:]
    records = [json.loads(x) for x in lines if x.startswith("{")]
    errors = sum(1 for r in records if r["level"] == "ERROR")
    warnings = sum(1 for r in records if r["level"] == "WARNING")
    other = sum(1 for x in lines if not x.startswith("{"))
    await sock.close()
    await client.disconnect()
    return (
        f"junk: {sent} malformed packets sent; log: {errors} ERROR, {warnings} WARNING, "
        f"{other} other lines; " + health_ms(dog)
    )


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            print(await binary(server.url, server.proc.pid, args.frames))
            print(await clock_flood(server.url, args.flooders, args.seconds))
            print(await junk(server.url, server.log))
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="binary frames (300)")
    parser.add_argument("--flooders", type=int, default=3, help="flooding connections (3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="flood length, s (10)")
    asyncio.run(main(parser.parse_args()))
