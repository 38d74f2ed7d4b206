"""``tutti demo``: two bots play a real Bach chorale as a duet; print their results.

Starts a server in this process (or uses ``--url``), imports the chorale that
ships with Tutti, opens a duet room, lets two bots play soprano and bass in
real time with timing jitter and a few injected mistakes, and prints both
players' results and the saved session's id.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from server.app import create_app
from server.clients.bot import Style, run_bot
from server.clients.room_client import TuttiClient
from server.config import Settings

DEMO_PIECE = "bwv66.6.mid"  # J. S. Bach, chorale BWV 66.6, from music21's corpus
DEMO_TITLE = "Chorale BWV 66.6 (J. S. Bach)"


def _say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ensure_demo_piece(client: TuttiClient) -> dict[str, Any]:
    """The demo chorale from the server's library, uploading it the first time."""
    library = await client.fetch_json("/api/pieces")
    for piece in library["pieces"]:
        if piece["title"] == DEMO_TITLE:
            return piece
    midi = resources.files("server").joinpath("music", DEMO_PIECE).read_bytes()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{client.url}/api/pieces",
            params={"title": DEMO_TITLE},
            data=midi,
            headers={"Authorization": f"Bearer {client.token}"},
        ) as resp,
    ):
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"could not import the demo piece: {body}")
        return body


async def run_demo(settings: Settings, url: str | None, tempo_bpm: float | None) -> int:
    """Run the demo; return the process exit code."""
    runner = None
    if url is None:
        port = free_port()
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        _say(f"Started a Tutti server at {url} (data in {settings.data_dir})")
    try:
        return await _play_duet(url, tempo_bpm)
    finally:
        if runner is not None:
            await runner.cleanup()


async def _play_duet(url: str, tempo_bpm: float | None) -> int:
    host = TuttiClient(url)
    await host.connect("demo host", device_name="tutti demo")
    piece = await ensure_demo_piece(host)
    parts = [p["name"] for p in piece["parts"]]
    duet = (parts[0], parts[-1])
    _say(f"Piece: {piece['title']}; parts {', '.join(parts)}; bots play {duet[0]} and {duet[1]}")
    create = {
        "piece_id": piece["id"],
        "mode": "duet",
        "tempo_bpm": tempo_bpm,
        "count_in_beats": 4,
        "name": "Tutti demo",
    }
    room = (await host.call("room:create", create))["room"]
    room_id = room["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "spectator"})
    _say(f"Duet room {room_id} at {room['tempo_bpm']:g} BPM")
    styles = [
        ("Ada (bot)", duet[0], Style(jitter_ms=15, wrong=2, seed=1)),
        ("Bo (bot)", duet[1], Style(jitter_ms=25, tempo_ratio=0.95, dropped=2, seed=2)),
    ]
    bots = [
        asyncio.create_task(run_bot(url, room_id, part, name=name, style=style))
        for name, part, style in styles
    ]
    await host.wait_for(
        "room:state", lambda s: sum(m["role"] == "player" for m in s["members"]) == 2, timeout=30
    )
    await host.call("room:start", {"room_id": room_id})
    seconds = piece["duration_seconds"] * piece["tempo_bpm"] / room["tempo_bpm"]
    _say(f"Playing: about {seconds:.0f} s of music after a 4-beat count-in...")
    finished = (await asyncio.gather(*bots))[0]
    session = await host.fetch_json(f"/api/sessions/{finished['session_id']}")
    await host.disconnect()
    names = {
        m["user_id"]: m["display_name"] for s in host.received["room:state"] for m in s["members"]
    }
    _say(results_table(finished, names))
    _say(f"Saved as session {finished['session_id']} ({len(session['logs'])} practice logs)")
    _say(f"  {url}/api/sessions/{finished['session_id']}")
    return 0


COLUMNS = (
    ("part", "part"),
    ("expected", "notes_expected"),
    ("played", "notes_played"),
    ("matched", "notes_matched"),
    ("wrong", "wrong_pitch"),
    ("extra", "extra"),
    ("missed", "missed"),
    ("accuracy", "accuracy"),
    ("F1", "f1"),
    ("mean ms", "onset_mean_ms"),
    ("std ms", "onset_std_ms"),
    ("BPM played", "tempo_bpm_played"),
    ("async ms", "asynchrony_ms"),
)


def results_table(finished: dict[str, Any], names: dict[str, str]) -> str:
    """A plain-text table of every player's result in a ``room:finished`` payload."""
    header = ["player"] + [title for title, _ in COLUMNS]
    rows = [header]
    for user_id, result in finished["results"].items():
        row = [names.get(user_id, user_id)]
        for _, key in COLUMNS:
            value = result.get(key)
            row.append(
                "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
            )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(settings: Settings, url: str | None, tempo_bpm: float | None) -> int:
    try:
        return asyncio.run(run_demo(settings, url, tempo_bpm))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # tell a person what went wrong, not a traceback
        print(f"tutti demo failed: {exc}", file=sys.stderr)
        return 1
