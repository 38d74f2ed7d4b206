"""The servers under test of the relay benchmark, and their CPU and memory from /proc.

* Tutti: ``tutti serve`` with its own temporary data folder (SQLite), one or
  two processes; two share a private ``redis-server``.
* ``bare-python``: :mod:`loadtests.relays.bare_python` (python-socketio +
  aiohttp, no application logic).
* ``raw-aiohttp``: :mod:`loadtests.relays.raw_aiohttp` (a plain aiohttp
  websocket relay with JSON frames, no Socket.IO: the transport's own cost).
* ``node``: ``loadtests/relays/node/relay.js`` (Socket.IO 4), after
  ``npm install`` into its folder on first use; ``None`` without node/npm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import RedisProcess, ServerProcess, free_port, start_redis, start_server

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "loadtests" / "relays" / "node"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (s), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (bytes), from /proc/<pid>/statm."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@dataclass
class Target:
    """A server under test: its URLs (one per process) and what to stop."""

    name: str
    kind: str  # "tutti", "bare" (Socket.IO) or "raw" (JSON frames): the generator's protocol
    urls: list[str]
    pids: list[int]
    helper_pids: list[int] = field(default_factory=list)  # e.g. redis-server
    _stops: list = field(default_factory=list)

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids)

    def helper_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.helper_pids)

    def rss(self) -> int:
        return sum(rss_bytes(p) for p in self.pids)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                print(f"  (stopping {self.name}: {exc})", file=sys.stderr)


def start_tutti(workdir: Path, processes: int, grace_ms: int) -> Target:
    """``processes`` Tutti servers (two or more share a private Redis)."""
    extra = ["--log-level", "WARNING", "--start-delay-ms", "200", "--grace-ms", str(grace_ms)]
    # Every generated client comes from one address (the per-IP REST limit would throttle
    # thousands of guest logins, the per-IP connection cap refuse thousands of sockets), and
    # the fan-out case is a room of hundreds of listeners.
    extra += ["--rate-limit-rest-ip", "", "--max-connections-per-ip", "0"]
    extra += ["--max-spectators", "5000"]
    redis: RedisProcess | None = None
    if processes > 1:
        redis = start_redis(workdir / "redis")
        extra += ["--redis-url", redis.url]
    servers: list[ServerProcess] = []
    try:
        # One secret: a guest token from one process is valid on the other.
        env = {"TUTTI_SECRET_KEY": "bench-" + os.urandom(8).hex()}
        data = workdir / "tutti-data"  # one SQLite file for the cluster, as with one database
        for _ in range(processes):
            servers.append(start_server(data, *extra, env=env))
    except Exception:
        for s in servers:
            s.stop()
        if redis is not None:
            redis.stop()
        raise
    name = "tutti" if processes == 1 else f"tutti×{processes}"
    target = Target(name, "tutti", [s.url for s in servers], [s.proc.pid for s in servers])
    if redis is not None:
        target.helper_pids.append(redis.proc.pid)
        target._stops.append(redis.stop)
    for s in servers:
        target._stops.append(lambda s=s: s.stop(timeout=60))
    return target


def _start_process(
    name: str, args: list[str], cwd: Path, log: Path, health: str, kind: str = "bare"
) -> Target:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*args, "--port", str(port)], cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + health, timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{name} did not come up: {log.read_text()[-2000:]}")
        time.sleep(0.05)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    return Target(name, kind, [url], [proc.pid], _stops=[stop])


def start_bare_python(workdir: Path) -> Target:
    script = ROOT / "loadtests" / "relays" / "bare_python.py"
    return _start_process(
        "bare-python", [sys.executable, str(script)], ROOT, workdir / "bare-python.log", "/health"
    )


def start_raw_aiohttp(workdir: Path) -> Target:
    script = ROOT / "loadtests" / "relays" / "raw_aiohttp.py"
    return _start_process(
        "raw-aiohttp",
        [sys.executable, str(script)],
        ROOT,
        workdir / "raw-aiohttp.log",
        "/health",
        kind="raw",
    )


def node_missing() -> str | None:
    """Why the Node relay cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not installed: the Node Socket.IO relay is skipped"
    return None


def ensure_node_modules() -> None:
    """``npm install`` the Node relay's pinned socket.io on first use."""
    if (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return
    print("  npm install (Node relay, first use)...", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel", "error"],
        cwd=NODE_DIR,
        check=True,
        timeout=600,
    )


def start_node(workdir: Path) -> Target:
    ensure_node_modules()
    return _start_process(
        "node", ["node", "relay.js"], NODE_DIR, workdir / "node-relay.log", "/health"
    )
