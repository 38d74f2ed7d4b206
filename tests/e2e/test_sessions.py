"""Room lifecycles through a real server: leaving, ending, shutdown — every player gets a log."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from rooms.piece import load_midi
from server.clients.bot import Style, play_part
from server.clients.room_client import TuttiError
from tests.music import chorale_midi
from tests.play import connected, upload_piece


def logs(database, session_id: str) -> dict[str, dict]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT user_id, complete, activity_type, result FROM practice_logs "
            "WHERE session_id = ?",
            (session_id,),
        ).fetchall()
    return {
        u: {"complete": bool(c), "activity_type": a, "result": json.loads(r)} for u, c, a, r in rows
    }


async def duet(url: str, tempo: float = 200.0):
    midi = chorale_midi("bach/bwv66.6")
    host = await connected(url, "host")
    info = await upload_piece(host, midi, title="lifecycle")
    room = (
        await host.call(
            "room:create",
            {"piece_id": info["id"], "mode": "duet", "tempo_bpm": tempo, "count_in_beats": 0},
        )
    )["room"]
    partner = await connected(url, "partner")
    await host.call("room:join", {"room_id": room["room_id"], "role": "player", "part": "Soprano"})
    await partner.call("room:join", {"room_id": room["room_id"], "role": "player", "part": "Bass"})
    return host, partner, room["room_id"], load_midi(midi)


async def test_player_who_drops_mid_piece_gets_an_incomplete_log(server):
    host, partner, room_id, piece = await duet(server.url)
    started = await host.call("room:start", {"room_id": room_id})
    scale = piece.bpm / 200.0
    host_play = asyncio.create_task(
        play_part(
            host,
            room_id,
            piece.part("Soprano"),
            start_at=started["start_at"],
            time_scale=scale,
            style=Style(jitter_ms=10, seed=1),
        )
    )
    partner_play = asyncio.create_task(
        play_part(
            partner,
            room_id,
            piece.part("Bass"),
            start_at=started["start_at"],
            time_scale=scale,
            style=Style(jitter_ms=10, seed=2),
        )
    )
    await asyncio.sleep(3.0)
    partner_play.cancel()
    await partner.disconnect()  # the connection drops mid-piece
    state = await host.wait_for(
        "room:state", lambda s: s["phase"] == "playing" and len(s["members"]) == 1
    )
    assert state["members"][0]["user_id"] == host.user["id"]
    await host_play
    finished = await host.wait_for("room:finished", timeout=30)
    assert finished["reason"] == "piece_ended"
    saved = logs(server.database, finished["session_id"])
    assert saved[host.user["id"]]["complete"] is True
    dropped = saved[partner.user["id"]]
    assert dropped["complete"] is False
    assert 0 < dropped["result"]["notes_played"] < dropped["result"]["notes_expected"]
    assert {log["activity_type"] for log in saved.values()} == {"ensemble_reading"}
    assert {u: log["result"] for u, log in saved.items()} == finished["results"]
    await host.disconnect()


async def test_host_ends_the_room_early(server):
    host, partner, room_id, piece = await duet(server.url)
    started = await host.call("room:start", {"room_id": room_id})
    await asyncio.sleep(max(0.0, (started["start_at"] - host.server_now()) / 1000) + 0.2)
    await host.call(
        "note",
        {"room_id": room_id, "type": "on", "pitch": 66, "velocity": 70, "t": host.server_now()},
    )
    ended = await host.call("room:end", {"room_id": room_id})
    finished = await partner.wait_for("room:finished", timeout=5)
    assert finished["session_id"] == ended["session_id"]
    assert finished["reason"] == "host_ended"
    assert all(r["complete"] is False for r in finished["results"].values())
    saved = logs(server.database, ended["session_id"])
    assert len(saved) == 2
    for client in (host, partner):
        await client.disconnect()


async def test_room_finishes_when_every_player_left(server):
    host, partner, room_id, _ = await duet(server.url)
    await host.call("room:start", {"room_id": room_id})
    await host.call("room:leave", {"room_id": room_id})
    await partner.call("room:leave", {"room_id": room_id})
    await asyncio.sleep(0.5)
    with sqlite3.connect(server.database) as db:
        row = db.execute(
            "SELECT end_reason FROM practice_sessions WHERE room_id = ?", (room_id,)
        ).fetchone()
    assert row == ("all_left",)
    for client in (host, partner):
        await client.disconnect()


async def test_sigterm_saves_rooms_in_progress(fresh_server):
    server = fresh_server()
    host, partner, room_id, _ = await duet(server.url, tempo=60.0)
    await host.call("room:start", {"room_id": room_id})
    # Stop from a thread: the clients in this event loop must be free to answer the close.
    assert await asyncio.to_thread(server.stop) == 0
    with sqlite3.connect(server.database) as db:
        rows = db.execute(
            "SELECT s.end_reason, count(l.id) FROM practice_sessions s "
            "JOIN practice_logs l ON l.session_id = s.id WHERE s.room_id = ?",
            (room_id,),
        ).fetchall()
    assert rows == [("server_shutdown", 2)]


async def test_only_participants_can_read_a_session(server):
    host, partner, room_id, _ = await duet(server.url)
    await host.call("room:start", {"room_id": room_id})
    ended = await host.call("room:end", {"room_id": room_id})
    path = f"/api/sessions/{ended['session_id']}"
    assert (await partner.fetch_json(path))["session_id"] == ended["session_id"]
    stranger = await connected(server.url, "stranger")
    for fetch in (stranger.fetch_json, stranger.fetch_bytes):
        with pytest.raises(TuttiError) as info:
            await fetch(path if fetch is stranger.fetch_json else path + "/recording.mid")
        assert info.value.code == "unknown_session"
    for client in (host, partner, stranger):
        await client.disconnect()
