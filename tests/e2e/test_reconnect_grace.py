"""The reconnect grace period (``--reconnect-grace-s``): a member whose connection drops
keeps their part, their role and the room for that long, and a join from a new
connection carries on where they were."""

from __future__ import annotations

import asyncio
import time

import pytest

from rooms.piece import load_midi
from server.clients.bot import Style, play_part
from server.clients.room_client import TuttiClient
from tests.music import chorale_midi
from tests.play import connected, upload_piece

pytestmark = pytest.mark.realtime
TEMPO = 200.0


async def _duet_room(url: str) -> tuple[TuttiClient, str, object]:
    midi = chorale_midi("bach/bwv66.6")
    host = await connected(url, "host")
    info = await upload_piece(host, midi, title="grace")
    room = await host.call(
        "room:create",
        {"piece_id": info["id"], "mode": "duet", "tempo_bpm": TEMPO, "count_in_beats": 0},
    )
    room_id = room["room"]["room_id"]
    await host.call("room:join", {"room_id": room_id, "role": "player", "part": "Soprano"})
    return host, room_id, load_midi(midi, title="grace")


async def _again(url: str, old: TuttiClient) -> TuttiClient:
    """The same user on a new connection (a new Socket.IO session)."""
    new = TuttiClient(url)
    new.token, new.user = old.token, old.user
    await new.connect(device_id="after-the-blip")
    await new.sync_clock(3)
    return new


async def test_a_solo_player_who_drops_mid_piece_rejoins_and_is_scored(fresh_server):
    """Alone in a room, the player's connection drops just after the start: the room
    stays open, and the player, back on a new connection, keeps the part and the host
    role, plays the piece and gets a complete result (without the grace period the
    room ended ``all_left`` at the drop)."""
    server = fresh_server("--reconnect-grace-s", "10")
    host, room_id, piece = await _duet_room(server.url)
    user_id = host.user["id"]
    started = await host.call("room:start", {"room_id": room_id})
    await host.disconnect()
    await asyncio.sleep(1.0)
    back = await _again(server.url, host)
    try:
        joined = await back.call("room:join", {"room_id": room_id, "role": "player"})
        room = joined["room"]
        assert room["host"] == user_id
        assert {p["name"]: p["user_id"] for p in room["parts"]}["Soprano"] == user_id
        await play_part(
            back,
            room_id,
            piece.part("Soprano"),
            start_at=started["start_at"],
            time_scale=piece.bpm / TEMPO,
            style=Style(seed=7),
        )
        finished = await back.wait_for("room:finished", timeout=60)
        assert finished["reason"] == "piece_ended"
        result = finished["results"][user_id]
        assert result["complete"] is True
        assert result["accuracy"] >= 0.9
    finally:
        await back.disconnect()


async def test_a_dropped_host_keeps_the_role_until_the_grace_ends(fresh_server):
    """The host drops before the start: the partner sees nothing change until the grace
    period is over; then the host leaves and the role passes to the partner."""
    server = fresh_server("--reconnect-grace-s", "2")
    host, room_id, _ = await _duet_room(server.url)
    partner = await connected(server.url, "partner")
    try:
        await partner.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
        dropped = time.monotonic()
        await host.disconnect()
        state = await partner.wait_for(
            "room:state", lambda s: s["host"] == partner.user["id"], timeout=20
        )
        assert time.monotonic() - dropped >= 1.5  # not before the grace period ended
        assert [m["user_id"] for m in state["members"]] == [partner.user["id"]]
    finally:
        await partner.disconnect()


async def test_a_player_who_never_comes_back_leaves_after_the_grace(fresh_server):
    """Nobody returns: after the grace period the room finishes ``all_left`` and is saved
    with the player's log."""
    server = fresh_server("--reconnect-grace-s", "1")
    host, room_id, _ = await _duet_room(server.url)
    watcher = await connected(server.url, "watcher")
    try:
        await watcher.call("room:join", {"room_id": room_id, "role": "spectator"})
        await host.call("room:start", {"room_id": room_id})
        await host.disconnect()
        finished = await watcher.wait_for("room:finished", timeout=20)
        assert finished["reason"] == "all_left"
        assert list(finished["results"]) == [host.user["id"]]
    finally:
        await watcher.disconnect()


async def test_a_rejoin_within_the_grace_cannot_change_part(fresh_server):
    server = fresh_server("--reconnect-grace-s", "10")
    host, room_id, _ = await _duet_room(server.url)
    await host.disconnect()
    back = await _again(server.url, host)
    try:
        with pytest.raises(Exception) as refused:
            await back.call("room:join", {"room_id": room_id, "role": "player", "part": "Bass"})
        assert "part_taken" in str(refused.value)
        joined = await back.call("room:join", {"room_id": room_id, "role": "player"})
        assert joined["room"]["host"] == host.user["id"]
    finally:
        await back.disconnect()
