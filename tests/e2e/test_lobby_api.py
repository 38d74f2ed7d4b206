"""The browser client's REST support (server/rest/lobby.py) on a real ``tutti serve``: the
lobby's open rooms and a piece's notes for the piano roll."""

from __future__ import annotations

import aiohttp
import pytest

from rooms.piece import load_midi
from server.clients.room_client import TuttiClient
from tests.music import chorale_midi
from tests.play import upload_piece


async def get(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_open_rooms_are_listed_until_they_finish(server):
    host = TuttiClient(server.url)
    await host.connect("Host")
    try:
        piece = await upload_piece(host, chorale_midi())
        created = await host.call(
            "room:create",
            {"piece_id": piece["id"], "mode": "duet", "tempo_bpm": None,
             "count_in_beats": 2, "name": "Listed duet"},
        )  # fmt: skip
        room_id = created["room"]["room_id"]
        await host.call("room:join", {"room_id": room_id, "role": "player", "part": "Alto"})
        status, body = await get(server.url + "/api/rooms", host.token)
        assert status == 200
        [room] = [r for r in body["rooms"] if r["room_id"] == room_id]
        assert room["name"] == "Listed duet" and room["phase"] == "waiting"
        assert room["piece_title"] == piece["title"] and room["mode"] == "duet"
        assert [m["part"] for m in room["members"]] == ["Alto"]
        assert {p["name"]: p["user_id"] for p in room["parts"]}["Alto"] == host.user["id"]
        assert room["created_at"] > 0
        await host.call("room:start", {"room_id": room_id})
        await host.call("room:end", {"room_id": room_id})
        _, body = await get(server.url + "/api/rooms", host.token)
        assert room_id not in {r["room_id"] for r in body["rooms"]}
    finally:
        await host.disconnect()


async def test_rooms_need_a_token(server):
    status, body = await get(server.url + "/api/rooms")
    assert (status, body["error"]["code"]) == (401, "missing_token")
    status, body = await get(server.url + "/api/rooms", "not-a-token")
    assert (status, body["error"]["code"]) == (401, "invalid_token")


async def test_piece_notes_are_the_pieces(server):
    client = TuttiClient(server.url)
    await client.login_guest("Roll")
    midi = chorale_midi()
    piece = await upload_piece(client, midi)
    status, body = await get(f"{server.url}/api/pieces/{piece['id']}/notes")
    assert status == 200
    expected = load_midi(midi)
    assert body["tempo_bpm"] == pytest.approx(expected.bpm)
    assert [p["name"] for p in body["parts"]] == expected.part_names
    for part, ref in zip(body["parts"], expected.parts, strict=True):
        assert len(part["notes"]) == len(ref.notes)
        in_score_order = sorted(ref.notes, key=lambda n: (n.onset_tick, n.pitch))
        for (onset, offset, pitch, velocity, beat), note in zip(
            part["notes"], in_score_order, strict=True
        ):
            assert (pitch, velocity) == (note.pitch, note.velocity)
            assert beat == pytest.approx(note.onset_beat, abs=1e-6)
            assert onset == pytest.approx(note.onset_s, abs=1e-4)
            assert offset == pytest.approx(note.offset_s, abs=1e-4)
    status, body = await get(f"{server.url}/api/pieces/nope/notes")
    assert (status, body["error"]["code"]) == (404, "unknown_piece")


async def test_private_rooms_are_not_listed(server):
    host = TuttiClient(server.url)
    await host.connect("Private host")
    try:
        public = await host.call("room:create", {"mode": "free", "count_in_beats": 0})
        private = await host.call(
            "room:create", {"mode": "free", "count_in_beats": 0, "private": True}
        )
        assert "invite_code" in private
        _, body = await get(server.url + "/api/rooms", host.token)
        listed = {r["room_id"] for r in body["rooms"]}
        assert public["room"]["room_id"] in listed
        assert private["room"]["room_id"] not in listed
    finally:
        await host.disconnect()
