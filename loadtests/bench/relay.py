"""Relay benchmark: Tutti against bare python-socketio, raw aiohttp and Node Socket.IO 4 relays.

Run (full size, the issue's targets; about 15 minutes)::

    python -m loadtests.bench.relay

Tiny (what the test suite runs)::

    python -m loadtests.bench.relay --rooms 3 --seconds 2 --fanout-spectators 5 \\
        --cluster-rooms 2 --idle-connections 20 --saturation-rooms 2 --saturation-steps 2

Cases (``--cases``, comma-separated; each on every server of ``--servers``):

* ``duet`` — ``--rooms`` duet rooms × 2 players, each player sending
  ``--rate`` note events per second for ``--seconds`` s; every note is relayed
  to the partner.
* ``saturation`` — ``--saturation-rooms`` duet rooms; the rate per player
  starts at ``--saturation-start`` and grows ×``--saturation-factor`` per
  step of ``--saturation-seconds`` until delivered/s stops growing (< 3 %),
  p99 exceeds ``--saturation-p99-ms``, notes are lost or refused (a failed
  step is run again ``--saturation-retries`` times first), or
  ``--saturation-steps`` steps; reports the highest delivered/s of a step
  that met every condition.
* ``fanout`` — 1 performer at ``--fanout-rate`` notes/s, ``--fanout-spectators``
  listeners (Tutti: ``role: "spectator"``).
* ``cluster`` — Tutti only: two ``tutti serve`` processes over a private
  Redis, ``--cluster-rooms`` duet rooms whose two players are connected to
  different processes.
* ``idle`` — ``--idle-connections`` connected, idle clients (Tutti: each a
  guest user, authenticated, in no room); RSS per connection.

Figures (one markdown table at the end; latency = receive time − the note's
``t``, stamped when it was sent, on this machine's clock):

* sent/s, delivered/s: note events sent by the players / received by the
  other members, per second of the playing window;
* p50/p99/max ms: relay latency; lost: deliveries that never came (sent and
  not refused × other members − received, after a drain); refused: error
  acks (Tutti: validation or room errors);
* CPU s/1k notes: server CPU time (user + system, /proc/<pid>/stat, all
  server processes; Redis not included, shown as ``redis``) during the
  window and the drain per 1000 note events sent;
* RSS KB/conn: server RSS after every client connected and joined, before
  playing, minus the RSS before connecting, per connection (/proc statm);
* gen CPU %: the load generator processes' CPU over the window (100 % = one
  core); gen lag p99: how late the generator sent against its schedule. On
  a 2-core machine the generator competes with the server: a high lag
  means the figures measure the generator too.

Protocols: Tutti is driven through its real protocol (guest login over
REST, ``room:create`` on a real piece from the library — BWV 66.6, two
parts — ``room:join``, ``room:start``, acked ``note`` events), so
authentication, validation, scoring, recording, the recovery stream and
``score:update``/``room:state`` traffic are all on. The bare relays speak a
minimal equivalent (``join {room_id}``, ``note`` relayed unchanged to the room
except the sender, both acked) with no authentication, validation or state;
``raw-aiohttp`` (:mod:`loadtests.relays.raw_aiohttp`) the same over a plain
websocket in JSON frames, no Socket.IO: the limit, what the transport itself
costs (client: :mod:`loadtests.rawjson`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import contextlib

import orjson

from loadtests.bench import servers as bench_servers
from loadtests.bench.load import worker_main
from loadtests.bench.servers import Target, cpu_seconds
from rooms.piece import load_midi

PIECE = Path(__file__).resolve().parents[2] / "server" / "music" / "bwv66.6.mid"
ALL_CASES = ("duet", "saturation", "fanout", "cluster", "idle")
ALL_SERVERS = ("tutti", "bare-python", "raw-aiohttp", "node")
# The "a ÷ b" ratio rows of the table: Tutti against each baseline, and what Socket.IO
# itself costs over the raw websocket relay.
RATIOS = (
    ("tutti", "bare-python"),
    ("tutti", "raw-aiohttp"),
    ("tutti", "node"),
    ("bare-python", "raw-aiohttp"),
)


def say(text: str) -> None:
    print(text, flush=True)


def raise_file_limit(need: int) -> None:
    """Raise the soft open-file limit (inherited by the servers we start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        say(f"warning: open-file limit {want} < {need} needed; raise the hard limit (ulimit -Hn)")


# -- the generator processes -----------------------------------------------------------


class Workers:
    """``n`` generator processes (spawned), each a :mod:`loadtests.bench.load` worker."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns = []
        self.procs = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def all(self, *command: Any, per_worker: list | None = None) -> list[Any]:
        """Send a command to every worker (or ``per_worker[i]`` as last argument) and wait."""
        for i, conn in enumerate(self.conns):
            conn.send(command if per_worker is None else (*command, per_worker[i]))
        answers = []
        for conn in self.conns:
            status, result = conn.recv()
            if status != "ok":
                raise RuntimeError(f"generator: {result}")
            answers.append(result)
        return answers

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("close",))
        for conn, proc in zip(self.conns, self.procs, strict=True):
            if conn.poll(30):
                conn.recv()
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def split(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n)]


# -- Tutti's library -------------------------------------------------------------------


def import_piece(url: str) -> str:
    """Add BWV 66.6 to a Tutti server's library (as a guest); its piece id."""
    req = urllib.request.Request(
        url + "/api/auth/guest",
        data=orjson.dumps({"display_name": "bench librarian"}),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        token = orjson.loads(resp.read())["access_token"]
    req = urllib.request.Request(
        url + "/api/pieces?title=BWV%2066.6",
        data=PIECE.read_bytes(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "audio/midi"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return orjson.loads(resp.read())["id"]


class Music:
    """The bench piece: its parts' pitches and a tempo slow enough to last ``seconds``."""

    def __init__(self, seconds: float) -> None:
        piece = load_midi(PIECE.read_bytes(), title="BWV 66.6")
        self.pitches = [n.pitch for n in piece.part(piece.part_names[0]).notes]
        # Slower than written (at least 20 BPM) so the players are within the piece.
        self.tempo_bpm = max(20.0, min(piece.bpm, piece.bpm * piece.duration_s / seconds))


# -- measuring ------------------------------------------------------------------------


def percentile(sorted_values, q: float) -> float:
    if len(sorted_values) == 0:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def sort_floats(chunks: list[bytes]):
    data = array("d")
    for chunk in chunks:
        data.frombytes(chunk)
    try:
        import numpy

        return numpy.sort(numpy.frombuffer(data, dtype=numpy.float64))
    except ImportError:
        return sorted(data)


class Session:
    """One server under test with its connected generator clients."""

    def __init__(self, target: Target, workers: int, music: Music, piece_id: str | None) -> None:
        self.target = target
        self.music = music
        self.piece_id = piece_id
        self.workers = Workers(workers)
        self.rss0 = target.rss()
        self.members: dict[str, int] = {}  # room key -> members
        self.connections = 0
        self.idle_rss_per_conn = float("nan")
        self.settle_s = 2.0

    def plan(self, key: str, members: list[dict], room_id: str | None = None, join=True) -> dict:
        self.members[key] = self.members.get(key, 0) + len(members)
        return {
            "key": key,
            "server": self.target.kind,
            "room_id": room_id,
            "join": join,
            "piece_id": self.piece_id,
            "tempo_bpm": self.music.tempo_bpm,
            "pitches": self.music.pitches,
            "members": members,
        }

    def setup(self, plans: list[dict], spread: bool = True) -> dict[str, str]:
        n = len(self.workers.conns)
        per = split(plans, n) if spread else [plans] + [[] for _ in range(n - 1)]
        answers = self.workers.all("setup", per_worker=per)
        room_ids: dict[str, str] = {}
        for a in answers:
            room_ids.update(a["room_ids"])
            self.connections += a["connections"]
        return room_ids

    def settle(self) -> None:
        time.sleep(self.settle_s)
        self.idle_rss_per_conn = (self.target.rss() - self.rss0) / max(1, self.connections)

    def start(self) -> None:
        if self.target.kind == "tutti":
            self.workers.all("start")
            time.sleep(0.5)  # past start_at (start delay 200 ms, no count-in)

    def play(self, rate: float, seconds: float, drain_s: float) -> dict[str, Any]:
        cpu0, helper0, gen0 = self.target.cpu(), self.target.helper_cpu(), self.workers.cpu()
        t0 = time.time() + 0.5
        answers = self.workers.all("play", t0, rate, seconds, drain_s)
        wall = time.time() - t0
        cpu = self.target.cpu() - cpu0
        helper = self.target.helper_cpu() - helper0
        gen = self.workers.cpu() - gen0
        sent_by_room: dict[str, int] = {}
        received = 0
        refused = 0
        unacked = 0
        for a in answers:
            for key, count in a["sent_by_room"].items():
                sent_by_room[key] = sent_by_room.get(key, 0) + count
            received += sum(a["received_by_room"].values())
            refused += sum(a["errors"].values())
            unacked += a["unacked"]
        errors: dict[str, int] = {}
        for a in answers:
            for code, count in a["errors"].items():
                errors[code] = errors.get(code, 0) + count
        sent = sum(sent_by_room.values())
        expected = sum(count * (self.members[k] - 1) for k, count in sent_by_room.items())
        # Refused notes are not relayed (Tutti); each had (members - 1) receivers.
        refused_deliveries = sum(
            c * (self.members[k] - 1) for k, c in _refused_by_room(answers).items()
        )
        lat = sort_floats([a["latencies"] for a in answers])
        lags = sort_floats([a["lags"] for a in answers])
        return {
            "server": self.target.name,
            "connections": self.connections,
            "rate": rate,
            "seconds": seconds,
            "sent_per_s": sent / seconds,
            "delivered_per_s": received / seconds,
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "max": float(lat[-1]) if len(lat) else float("nan"),
            "lost": max(0, expected - refused_deliveries - received),
            "refused": refused,
            "error_codes": errors,
            "unacked": unacked,
            "cpu_per_1k": 1000.0 * cpu / max(1, sent),
            "helper_cpu_per_1k": 1000.0 * helper / max(1, sent)
            if self.target.helper_pids
            else None,
            "rss_kb_per_conn": self.idle_rss_per_conn / 1024.0,
            "gen_cpu_pct": 100.0 * gen / max(1e-9, wall),
            "gen_lag_p99": percentile(lags, 99),
            "wall": wall,
        }

    def close(self) -> None:
        self.workers.close()


def _refused_by_room(answers: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in answers:
        for key, count in a["refused_by_room"].items():
            out[key] = out.get(key, 0) + count
    return out


# -- the cases ------------------------------------------------------------------------------


def duet_plans(session: Session, rooms: int, prefix: str) -> list[dict]:
    urls = session.target.urls
    plans = []
    for i in range(rooms):
        # With two processes, the two players of a room are on different ones.
        members = [
            {"url": urls[(i + j) % len(urls)], "role": "player", "plays": True} for j in range(2)
        ]
        plans.append(session.plan(f"{prefix}{i}", members))
    return plans


def progress(row: dict[str, Any], label: str) -> None:
    say(
        f"    {label}: sent {row['sent_per_s']:.0f}/s, delivered {row['delivered_per_s']:.0f}/s, "
        f"p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms, max {row['max']:.1f} ms, "
        f"lost {row['lost']}, refused {row['refused']}, server CPU "
        f"{row['cpu_per_1k']:.3f} s/1k, gen CPU {row['gen_cpu_pct']:.0f} %, "
        f"gen lag p99 {row['gen_lag_p99']:.1f} ms"
    )


def run_duet(session: Session, args, rooms: int, label: str) -> dict:
    say(f"  {session.target.name}: connecting {rooms} rooms × 2 players...")
    t = time.monotonic()
    session.setup(duet_plans(session, rooms, "d"))
    session.settle()
    say(
        f"    {session.connections} connections in {time.monotonic() - t:.1f} s, idle RSS "
        f"{session.idle_rss_per_conn / 1024:.1f} KB/conn; playing {args.rate:g} notes/s each "
        f"for {args.seconds:g} s..."
    )
    session.start()
    row = session.play(args.rate, args.seconds, args.drain)
    progress(row, label)
    return row


def run_saturation(session: Session, args) -> dict:
    say(f"  {session.target.name}: connecting {args.saturation_rooms} rooms × 2 players...")
    session.setup(duet_plans(session, args.saturation_rooms, "s"))
    session.settle()
    session.start()
    rate = args.saturation_start
    best: dict | None = None
    steps = []
    stopped = False
    for _ in range(args.saturation_steps):
        for attempt in range(1 + args.saturation_retries):
            if attempt:
                say("    failed: trying this rate again (a busy machine's hiccup?)")
            row = session.play(rate, args.saturation_seconds, args.drain)
            progress(row, f"rate {rate:g}/s per player")
            steps.append(row)
            ok = row["p99"] <= args.saturation_p99_ms and row["lost"] == 0 and row["refused"] == 0
            if ok:
                break
        if not ok:
            say("    stop: p99 over the limit, or notes lost or refused")
            stopped = True
            break
        grew = best is None or row["delivered_per_s"] > best["delivered_per_s"] * 1.03
        if not grew:
            say("    stop: delivered/s stopped growing")
            stopped = True
            break
        best = row
        rate *= args.saturation_factor
    result = dict(best or steps[-1])
    result["saturated"] = stopped and best is not None
    result["steps"] = [(s["rate"], s["delivered_per_s"], s["p99"]) for s in steps]
    return result


def run_fanout(session: Session, args) -> dict:
    n = args.fanout_spectators
    say(f"  {session.target.name}: 1 performer, connecting {n} spectators...")
    url = session.target.urls[0]
    performer = session.plan("fan", [{"url": url, "role": "player", "plays": True}])
    room_id = session.setup([performer], spread=False)["fan"]
    chunk = 25
    plans = [
        session.plan(
            "fan",
            [{"url": url, "role": "spectator", "plays": False}] * min(chunk, n - i),
            room_id=room_id,
        )
        for i in range(0, n, chunk)
    ]
    session.setup(plans)
    session.settle()
    session.start()
    row = session.play(args.fanout_rate, args.seconds, args.drain)
    progress(row, "fan-out")
    return row


def run_idle(session: Session, args) -> dict:
    n = args.idle_connections
    say(f"  {session.target.name}: connecting {n} idle clients...")
    url = session.target.urls[0]
    chunk = 50
    plans = [
        session.plan(
            f"idle{i}",
            [{"url": url, "role": "player", "plays": False}] * min(chunk, n - i),
            join=False,
        )
        for i in range(0, n, chunk)
    ]
    t = time.monotonic()
    session.setup(plans)
    session.settle()
    say(
        f"    {session.connections} connections in {time.monotonic() - t:.1f} s: "
        f"{session.idle_rss_per_conn / 1024:.1f} KB/conn"
    )
    nan = float("nan")
    return {
        "server": session.target.name,
        "connections": session.connections,
        "rss_kb_per_conn": session.idle_rss_per_conn / 1024.0,
        **{k: nan for k in ("sent_per_s", "delivered_per_s", "p50", "p99", "max")},
        **{k: nan for k in ("cpu_per_1k", "gen_cpu_pct", "gen_lag_p99")},
        "lost": 0,
        "refused": 0,
        "error_codes": {},
    }


# -- the table ------------------------------------------------------------------------------

COLUMNS = [
    ("conns", "connections", "{:.0f}"),
    ("sent/s", "sent_per_s", "{:.0f}"),
    ("delivered/s", "delivered_per_s", "{:.0f}"),
    ("p50 ms", "p50", "{:.2f}"),
    ("p99 ms", "p99", "{:.2f}"),
    ("max ms", "max", "{:.1f}"),
    ("lost", "lost", "{:.0f}"),
    ("refused", "refused", "{:.0f}"),
    ("CPU s/1k notes", "cpu_per_1k", "{:.3f}"),
    ("RSS KB/conn", "rss_kb_per_conn", "{:.1f}"),
    ("gen CPU %", "gen_cpu_pct", "{:.0f}"),
    ("gen lag p99 ms", "gen_lag_p99", "{:.1f}"),
]
RATIO_KEYS = ("delivered_per_s", "p50", "p99", "max", "cpu_per_1k", "rss_kb_per_conn")


def _cell(fmt: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return fmt.format(value)


def table(results: list[tuple[str, dict]]) -> str:
    head = "| case | server | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(COLUMNS)]
    by_case: dict[str, dict[str, dict]] = {}
    for case, row in results:
        by_case.setdefault(case, {})[row["server"]] = row
        cells = [_cell(fmt, row.get(key)) for _, key, fmt in COLUMNS]
        lines.append(f"| {case} | {row['server']} | " + " | ".join(cells) + " |")
    for case, rows in by_case.items():
        for name, other in RATIOS:
            row, base = rows.get(name), rows.get(other)
            if row is None or base is None:
                continue
            cells = []
            for _, key, _fmt in COLUMNS:
                a, b = row.get(key), base.get(key)
                if key in RATIO_KEYS and a is not None and b and a == a and b == b:
                    cells.append(f"×{a / b:.2f}")
                else:
                    cells.append("")
            lines.append(f"| {case} | {name} ÷ {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.bench.relay",
        description="Relay benchmark: Tutti vs bare python-socketio, raw aiohttp and Node relays.",
    )
    p.add_argument(
        "--cases", default=",".join(ALL_CASES), help="comma-separated: " + ", ".join(ALL_CASES)
    )
    p.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help="comma-separated: " + ", ".join(ALL_SERVERS),
    )
    p.add_argument("--workers", type=int, default=1, help="generator processes (default 1)")
    p.add_argument("--rooms", type=int, default=1000, help="duet rooms (default 1000)")
    p.add_argument("--rate", type=float, default=10.0, help="note events/s per player (10)")
    p.add_argument("--seconds", type=float, default=30.0, help="playing window, s (30)")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for stragglers, s (10)")
    p.add_argument("--saturation-rooms", type=int, default=200)
    p.add_argument("--saturation-start", type=float, default=10.0, help="notes/s per player")
    p.add_argument("--saturation-factor", type=float, default=1.5)
    p.add_argument("--saturation-seconds", type=float, default=10.0)
    p.add_argument("--saturation-steps", type=int, default=12)
    p.add_argument("--saturation-p99-ms", type=float, default=100.0)
    p.add_argument(
        "--saturation-retries", type=int, default=1, help="runs of a failed step before stopping"
    )
    p.add_argument("--fanout-spectators", type=int, default=500)
    p.add_argument("--fanout-rate", type=float, default=10.0)
    p.add_argument("--cluster-rooms", type=int, default=800)
    p.add_argument("--idle-connections", type=int, default=5000)
    p.add_argument("--settle", type=float, default=2.0, help="wait before the idle RSS, s")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[tuple[str, dict]]:
    args = parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    servers = [s for s in args.servers.split(",") if s]
    for c in cases:
        if c not in ALL_CASES:
            raise SystemExit(f"unknown case {c!r}")
    for s in servers:
        if s not in ALL_SERVERS:
            raise SystemExit(f"unknown server {s!r}")
    need = 2 * max(args.rooms, args.saturation_rooms, args.cluster_rooms) + args.idle_connections
    raise_file_limit(2 * need + 1000)
    if "node" in servers and (why := bench_servers.node_missing()):
        say(why)
        servers.remove("node")
    sat_time = args.saturation_steps * (args.saturation_seconds + args.drain)
    total_play = max(args.seconds + args.drain, sat_time) + 120
    music = Music(total_play)
    load = os.getloadavg()
    say(
        f"relay benchmark: cases {', '.join(cases)}; servers {', '.join(servers)}; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    results: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="tutti-bench-") as tmp:
        workdir = Path(tmp)
        runs: list[tuple[str, str]] = []
        for case in cases:
            for server in servers:
                if case == "cluster" and server != "tutti":
                    continue
                runs.append((case, server))
        for n, (case, server) in enumerate(runs):
            say(f"[{n + 1}/{len(runs)}] {case} on {server}")
            folder = workdir / f"{case}-{server}"
            folder.mkdir()
            grace_ms = int(total_play * 1000) + 600_000
            if server == "tutti":
                target = bench_servers.start_tutti(folder, 2 if case == "cluster" else 1, grace_ms)
            elif server == "bare-python":
                target = bench_servers.start_bare_python(folder)
            elif server == "raw-aiohttp":
                target = bench_servers.start_raw_aiohttp(folder)
            else:
                target = bench_servers.start_node(folder)
            session = None
            try:
                piece_id = import_piece(target.urls[0]) if target.kind == "tutti" else None
                session = Session(target, args.workers, music, piece_id)
                session.settle_s = args.settle
                if case == "duet":
                    label = f"duet {args.rooms}×2 @{args.rate:g}/s"
                    results.append((label, run_duet(session, args, args.rooms, label)))
                elif case == "cluster":
                    label = f"2 processes {args.cluster_rooms}×2 @{args.rate:g}/s"
                    results.append((label, run_duet(session, args, args.cluster_rooms, label)))
                elif case == "saturation":
                    label = f"saturation {args.saturation_rooms}×2 (max sustained)"
                    results.append((label, run_saturation(session, args)))
                elif case == "fanout":
                    label = f"fan-out 1→{args.fanout_spectators} @{args.fanout_rate:g}/s"
                    results.append((label, run_fanout(session, args)))
                elif case == "idle":
                    label = f"idle {args.idle_connections}"
                    results.append((label, run_idle(session, args)))
            finally:
                if session is not None:
                    session.close()
                target.stop()
    say("")
    say(table(results))
    load = os.getloadavg()
    say(
        f"\nLoad average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"({os.cpu_count()} CPUs). Latency: receive − send time of each relayed note event."
    )
    for case, row in results:
        if row.get("error_codes"):
            say(f"{case} / {row['server']}: refused {row['error_codes']}")
        if row.get("saturated") is False:
            say(
                f"{case} / {row['server']}: no saturation point found (the first step already "
                "failed, or the last step still grew): figures of the last good or first step"
            )
        if row.get("steps"):
            steps = ", ".join(f"{r:g}/s→{d:.0f}/s (p99 {p:.1f})" for r, d, p in row["steps"])
            say(f"{case} / {row['server']}: steps {steps}")
        if row.get("helper_cpu_per_1k") is not None:
            say(f"{case} / {row['server']}: redis-server CPU {row['helper_cpu_per_1k']:.3f} s/1k")
    if args.json:
        args.json.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return results


if __name__ == "__main__":
    main()
