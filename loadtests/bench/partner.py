"""The computer partner's asynchrony against a human who changes tempo (issue 16).

Run (about two minutes)::

    python -m loadtests.bench.partner

A ``tutti serve`` process with its own data folder; Bach's chorale BWV 66.6
(``server/music/bwv66.6.mid``) at ``--tempo`` BPM. For each tempo plan of the
issue (:func:`rooms.performance.issue_plans`: ``slower_bars`` 15 % slower for
the two middle bars then back, ``ritardando`` slowing to 70 % over the last
four bars, ``slower`` 8 % slower than the room) two duet rooms run at once:
a test player (a real Socket.IO client) plays the Soprano with the plan and
±``--jitter-ms`` uniform onset jitter, and a computer partner plays the Bass,
following (``follow: true``) in one room and at the room tempo in the other.

Figures, from the per-note results in ``room:finished`` (the human's and the
partner's ``notes``): on every onset the two parts share in the score, the
|difference| between the mean onsets of the two (ms): mean and p95; how many
shared onsets were compared; the partner's notes out of order (an onset
played before one earlier in the score, or a relayed note stamped before the
one before it). The room's own ``asynchrony_ms`` is the mean of the same
differences.

CPU (``--cpu-rooms N``, about two minutes more): the server's CPU time
(user + system, /proc) while N rooms play the chorale at once, each with the
test player on the Soprano and either a following computer partner or a
second test player on the Bass (both at the room tempo, ±jitter); the cases
run partner, people, people, partner, and the table gives each run and the
ratio of the sums.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from itertools import groupby
from pathlib import Path
from typing import Any

from rooms.performance import humanize, issue_plans, tempo_plan
from rooms.piece import Piece, load_midi
from server.clients.bot import send_group
from server.clients.room_client import TuttiClient

ROOT = Path(__file__).resolve().parents[2]
CHORALE = ROOT / "server" / "music" / "bwv66.6.mid"


async def play_plan(
    client: TuttiClient, room_id: str, piece: Piece, part: str, *, start_at: float, plan: Any
) -> None:
    """Play ``part`` from ``start_at`` (server epoch ms) in real time: ``plan`` is
    ``humanize``'s keyword arguments; each group of simultaneous events is one
    ``notes`` message sent when due, stamped with its planned time."""
    events = humanize(piece.part(part).notes, **plan)
    for _, group in groupby(events, key=lambda e: round(e.t_ms, 1)):
        await send_group(client, room_id, list(group), start_at=start_at)


async def partner_room(
    url: str,
    piece_id: str,
    piece: Piece,
    *,
    follow: bool,
    ratio_at: Any,
    tempo_bpm: float,
    jitter_ms: float = 10.0,
    seed: int = 1,
    human: str = "Soprano",
    partner: str = "Bass",
) -> tuple[dict, TuttiClient]:
    """One duet room: the test player on ``human`` with the tempo plan ``ratio_at``, the
    computer partner on ``partner``. Returns (``room:finished``, the player's client)."""
    client = TuttiClient(url)
    await client.connect(f"{human} ({'follow' if follow else 'fixed'})")
    await client.sync_clock(5)
    room = (
        await client.call(
            "room:create",
            {"piece_id": piece_id, "mode": "duet", "tempo_bpm": tempo_bpm, "count_in_beats": 2},
        )
    )["room"]
    room_id = room["room_id"]
    await client.call("room:join", {"room_id": room_id, "role": "player", "part": human})
    await client.call("room:add_partner", {"room_id": room_id, "part": partner, "follow": follow})
    started = await client.call("room:start", {"room_id": room_id})
    beat_ms = 60000.0 / tempo_bpm
    beats = max(n.offset_beat for n in piece.part(human).notes)
    plan = {
        "time_scale": piece.bpm / tempo_bpm,
        "jitter_ms": jitter_ms,
        "seed": seed,
        "warp": tempo_plan(ratio_at, beat_ms=beat_ms, beats=beats),
    }
    await play_plan(client, room_id, piece, human, start_at=started["start_at"], plan=plan)
    finished = await client.wait_for("room:finished", timeout=120)
    return finished, client


def heard_from(client: TuttiClient, user_id: str) -> list[dict]:
    """The ``note``/``notes`` events of ``user_id`` that ``client`` received, in seq order."""
    got = client.received
    events = [e for e in got["note"] if e["user_id"] == user_id]
    events += [e for m in got["notes"] if m["user_id"] == user_id for e in m["events"]]
    return sorted(events, key=lambda e: e["seq"])


def figures(finished: dict, heard: list[dict]) -> dict[str, Any]:
    """``{"mean", "p95", "pairs", "out_of_order", "asynchrony_ms"}`` (ms, counts) of one room."""
    (human,) = finished["results"].values()
    partner = finished["partner"]["result"]

    def onsets(result: dict) -> dict[float, float]:
        by_beat: dict[float, list[float]] = {}
        for note in result["notes"]:
            if note["played_ms"] is not None:
                by_beat.setdefault(note["onset_beat"], []).append(note["played_ms"])
        return {beat: sum(ts) / len(ts) for beat, ts in by_beat.items()}

    h, p = onsets(human), onsets(partner)
    diffs = sorted(abs(h[b] - p[b]) for b in h.keys() & p.keys())
    latest = float("-inf")
    out_of_order = 0
    for beat in sorted(p):  # in score order: each onset after the ones before it
        out_of_order += p[beat] < latest
        latest = max(latest, p[beat])
    ons = [e["t"] for e in heard if e["type"] == "on"]
    out_of_order += sum(b < a for a, b in zip(ons, ons[1:], strict=False))
    return {
        "mean": sum(diffs) / len(diffs) if diffs else None,
        "p95": diffs[int(0.95 * (len(diffs) - 1))] if diffs else None,
        "pairs": len(diffs),
        "out_of_order": out_of_order,
        "asynchrony_ms": finished["asynchrony_ms"],
    }


async def upload(client: TuttiClient, midi: bytes, title: str) -> str:
    """Upload ``midi`` to the library; the piece id."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{client.url}/api/pieces",
            params={"title": title},
            data=midi,
            headers={"Authorization": f"Bearer {client.token}"},
        ) as resp,
    ):
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"upload failed: {body}")
        return body["id"]


async def measure(
    url: str, plans: list[str], *, tempo_bpm: float, jitter_ms: float, seed: int = 1
) -> list[dict[str, Any]]:
    """Run every plan with and without following (the two rooms at once); one row each."""
    midi = CHORALE.read_bytes()
    piece = load_midi(midi, title="BWV 66.6")
    uploader = TuttiClient(url)
    await uploader.connect("uploader")
    piece_id = await upload(uploader, midi, "BWV 66.6")
    await uploader.disconnect()
    ratios = issue_plans(max(n.offset_beat for n in piece.part("Soprano").notes))
    rows = []
    for name in plans:
        runs = await asyncio.gather(
            *(
                partner_room(
                    url,
                    piece_id,
                    piece,
                    follow=follow,
                    ratio_at=ratios[name],
                    tempo_bpm=tempo_bpm,
                    jitter_ms=jitter_ms,
                    seed=seed,
                )
                for follow in (True, False)
            )
        )
        for follow, (finished, client) in zip((True, False), runs, strict=True):
            heard = heard_from(client, finished["partner"]["user_id"])
            rows.append({"plan": name, "follow": follow, **figures(finished, heard)})
            await client.disconnect()
    return rows


async def two_people_room(
    url: str, piece_id: str, piece: Piece, *, tempo_bpm: float, partner: bool, seed: int
) -> None:
    """One duet room: a test player on the Soprano and a computer partner (following) or a
    second test player on the Bass, both at the room tempo with ±10 ms jitter."""
    players = [TuttiClient(url) for _ in range(1 if partner else 2)]
    for i, client in enumerate(players):
        await client.connect(f"cpu {seed}.{i}")
        await client.sync_clock(3)
    host = players[0]
    room = (
        await host.call(
            "room:create",
            {"piece_id": piece_id, "mode": "duet", "tempo_bpm": tempo_bpm, "count_in_beats": 2},
        )
    )["room"]
    rid = room["room_id"]
    parts = ["Soprano", "Bass"]
    for client, part in zip(players, parts, strict=False):
        await client.call("room:join", {"room_id": rid, "role": "player", "part": part})
    if partner:
        await host.call("room:add_partner", {"room_id": rid, "part": "Bass", "follow": True})
    started = await host.call("room:start", {"room_id": rid})
    plan = {"time_scale": piece.bpm / tempo_bpm, "jitter_ms": 10.0, "seed": seed}
    await asyncio.gather(
        *(
            play_plan(c, rid, piece, part, start_at=started["start_at"], plan=plan)
            for c, part in zip(players, parts, strict=False)
        )
    )
    await host.wait_for("room:finished", timeout=120)
    for client in players:
        await client.disconnect()


async def measure_cpu(target: Any, *, rooms: int, tempo_bpm: float) -> list[dict[str, Any]]:
    """Server CPU (s) of ``rooms`` rooms at once with a partner / with two people, ABBA."""
    midi = CHORALE.read_bytes()
    piece = load_midi(midi, title="BWV 66.6")
    uploader = TuttiClient(target.urls[0])
    await uploader.connect("uploader")
    piece_id = await upload(uploader, midi, "BWV 66.6")
    await uploader.disconnect()
    runs = []
    for k, partner in enumerate((True, False, False, True)):
        await asyncio.sleep(1.0)  # the last case's saves and timers settle
        before = target.cpu()
        await asyncio.gather(
            *(
                two_people_room(
                    target.urls[0],
                    piece_id,
                    piece,
                    tempo_bpm=tempo_bpm,
                    partner=partner,
                    seed=k * 100 + i,
                )
                for i in range(rooms)
            )
        )
        runs.append({"partner": partner, "rooms": rooms, "cpu_s": target.cpu() - before})
    return runs


def cpu_table(runs: list[dict[str, Any]]) -> str:
    """The CPU runs as a markdown table, with the ratio of the sums."""
    lines = ["| run | Bass played by | rooms | server CPU s |", "|---|---|---:|---:|"]
    for i, r in enumerate(runs, 1):
        who = "computer partner (follow)" if r["partner"] else "a second test player"
        lines.append(f"| {i} | {who} | {r['rooms']} | {r['cpu_s']:.2f} |")
    with_partner = sum(r["cpu_s"] for r in runs if r["partner"])
    people = sum(r["cpu_s"] for r in runs if not r["partner"])
    lines.append(f"\npartner / two people: ×{with_partner / people:.3f}")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| plan | follow | mean ms | p95 ms | shared onsets | out of order | room asynchrony_ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['plan']} | {'on' if r['follow'] else 'off'} | {r['mean']:.1f} | "
            f"{r['p95']:.1f} | {r['pairs']} | {r['out_of_order']} | {r['asynchrony_ms']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tempo", type=float, default=120.0, help="room tempo, BPM")
    p.add_argument("--jitter-ms", type=float, default=10.0, help="human onset jitter, ± ms")
    p.add_argument("--plans", default="slower_bars,ritardando,slower")
    p.add_argument("--cpu-rooms", type=int, default=0, help="rooms at once for the CPU case")
    args = p.parse_args(argv)
    plans = [name for name in args.plans.split(",") if name]
    from loadtests.bench.servers import start_tutti

    with tempfile.TemporaryDirectory(prefix="tutti-partner-") as data:
        target = start_tutti(Path(data), 1, grace_ms=1500)
        try:
            rows = asyncio.run(
                measure(target.urls[0], plans, tempo_bpm=args.tempo, jitter_ms=args.jitter_ms)
            )
            cpu = None
            if args.cpu_rooms:
                cpu = asyncio.run(measure_cpu(target, rooms=args.cpu_rooms, tempo_bpm=args.tempo))
        finally:
            target.stop()
    if rows:
        print(table(rows))
    if cpu:
        print(cpu_table(cpu))
    return rows


if __name__ == "__main__":
    main()
