"""Bad input against a real server: a specific error ack, nothing changed, everyone else served.

A bystander room plays notes the whole time; at the end it must have heard
every note, in order, with no gap in its sequence numbers.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import socketio

from server.clients.room_client import TuttiClient, TuttiError
from tests.music import chorale_midi
from tests.play import connected, expect_error, upload_piece


class Bystanders:
    """Two players in a free-jam room; one plays a note every 20 ms, the other listens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Bystanders:
        self.player = await connected(self.url, "bystander")
        self.listener = await connected(self.url, "listener")
        room = (await self.player.call("room:create", {"mode": "free", "count_in_beats": 0}))[
            "room"
        ]
        self.room_id = room["room_id"]
        for client in (self.player, self.listener):
            await client.call("room:join", {"room_id": self.room_id, "role": "player"})
        await self.player.call("room:start", {"room_id": self.room_id})
        self._task = asyncio.create_task(self._play())
        return self

    async def _play(self) -> None:
        pitch = 60
        while not self._stop.is_set():
            t = self.player.server_now()
            for kind in ("on", "off"):
                await self.player.call(
                    "note",
                    {"room_id": self.room_id, "type": kind, "pitch": pitch, "velocity": 64, "t": t},
                )
                self.sent += 1
            pitch = 60 + (pitch - 59) % 12
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await self._task
        await asyncio.sleep(0.3)
        heard = [m["seq"] for m in self.listener.received["note"]]
        assert self.sent > 20
        assert heard == list(range(1, self.sent + 1)), (
            "the bystander room missed or reordered notes"
        )
        for client in (self.player, self.listener):
            await client.disconnect()


def note(room_id: str, t: float, **overrides) -> dict:
    return {"room_id": room_id, "type": "on", "pitch": 60, "velocity": 80, "t": t, **overrides}


async def test_bad_events_get_specific_errors_and_change_nothing(server):
    async with Bystanders(server.url):
        host = await connected(server.url, "host")
        piece = await upload_piece(host, chorale_midi("bach/bwv66.6"), title="bad input")
        room = (
            await host.call(
                "room:create", {"piece_id": piece["id"], "mode": "duet", "count_in_beats": 0}
            )
        )["room"]
        rid = room["room_id"]
        now = host.server_now
        await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})

        # Before the start.
        await expect_error(host, "note", note(rid, now()), "not_started")
        # Room creation and joining.
        await expect_error(
            host, "room:create", {"piece_id": "nope", "mode": "duet"}, "unknown_piece"
        )
        await expect_error(host, "room:create", {"piece_id": None, "mode": "solo"}, "invalid_value")
        await expect_error(
            host,
            "room:create",
            {"piece_id": piece["id"], "mode": "duet", "tempo_bpm": 1000},
            "out_of_range",
        )
        await expect_error(
            host, "room:create", {"piece_id": None, "mode": "duet"}, "piece_required"
        )
        await expect_error(
            host, "room:create", {"piece_id": piece["id"], "mode": "free"}, "invalid_mode"
        )
        partner = await connected(server.url, "partner")
        message = await expect_error(
            partner,
            "room:join",
            {"room_id": rid, "role": "player", "part": "Descant"},
            "unknown_part",
        )
        assert "Soprano" in message and "Bass" in message
        await expect_error(
            partner,
            "room:join",
            {"room_id": rid, "role": "player", "part": "Soprano"},
            "part_taken",
        )
        await expect_error(
            partner, "room:join", {"room_id": "nope", "role": "player"}, "unknown_room"
        )
        await expect_error(
            partner, "room:join", {"room_id": rid, "role": "conductor"}, "invalid_value"
        )
        await expect_error(host, "room:join", {"room_id": rid, "role": "player"}, "already_joined")
        await partner.call("room:join", {"room_id": rid, "role": "player", "part": "Bass"})
        third = await connected(server.url, "third")
        await expect_error(third, "room:join", {"room_id": rid, "role": "player"}, "room_full")
        await third.call("room:join", {"room_id": rid, "role": "spectator"})
        await expect_error(partner, "room:start", {"room_id": rid}, "not_host")

        started = await host.call("room:start", {"room_id": rid})
        await expect_error(host, "room:start", {"room_id": rid}, "already_started")
        await asyncio.sleep(max(0.0, (started["start_at"] - now()) / 1000))
        first = await host.call("note", note(rid, now()))
        assert first["seq"] == 1

        cases = [
            ("note", note(rid, now(), pitch="60"), "wrong_type"),
            ("note", note(rid, now(), pitch=60.5), "wrong_type"),
            ("note", note(rid, now(), velocity=True), "wrong_type"),
            ("note", [1, 2, 3], "wrong_type"),
            ("note", "hello", "wrong_type"),
            ("note", None, "wrong_type"),
            ("note", note(rid, now(), pitch=200), "out_of_range"),
            ("note", note(rid, now(), pitch=-1), "out_of_range"),
            ("note", note(rid, now(), velocity=128), "out_of_range"),
            ("note", note(rid, now(), velocity=0), "invalid_value"),
            ("note", note(rid, now(), type="press"), "invalid_value"),
            ("note", {k: v for k, v in note(rid, now()).items() if k != "t"}, "missing_field"),
            (
                "note",
                {k: v for k, v in note(rid, now()).items() if k != "room_id"},
                "missing_field",
            ),
            ("note", note(rid, now(), channel=3), "unknown_field"),
            ("note", note("no-such-room", now()), "unknown_room"),
            ("note", note(rid, now() + 3_600_000), "note_time_out_of_range"),
            ("note", note(rid, now() - 3_600_000), "note_time_out_of_range"),
            ("notes", {"room_id": rid, "events": [note(rid, now())] * 10_000}, "too_many_events"),
            ("notes", {"room_id": rid, "events": []}, "invalid_value"),
            ("notes", {"room_id": rid, "events": "lots"}, "wrong_type"),
            # One bad event spoils the whole batch: none of the good ones is applied.
            (
                "notes",
                {
                    "room_id": rid,
                    "events": [
                        {"type": "on", "pitch": 62, "velocity": 80, "t": now()},
                        {"type": "on", "pitch": 64, "velocity": 80, "t": now() + 3_600_000},
                    ],
                },
                "note_time_out_of_range",
            ),
            ("clock", {"t0": "now"}, "wrong_type"),
            ("clock", {}, "missing_field"),
            ("room:leave", {"room_id": 7}, "wrong_type"),
            ("room:end", {"room_id": rid, "force": True}, "unknown_field"),
            ("no:such:event", {"room_id": rid}, "unknown_event"),
        ]
        for event, data, code in cases:
            await expect_error(host, event, data, code)
        # A spectator and a stranger cannot play.
        await expect_error(third, "note", note(rid, now()), "spectator_cannot_play")
        stranger = await connected(server.url, "stranger")
        await expect_error(stranger, "note", note(rid, now()), "not_in_room")
        await expect_error(partner, "room:end", {"room_id": rid}, "not_host")

        # Nothing changed: the next good note takes the next sequence number.
        second = await host.call("note", note(rid, now(), type="off", velocity=64))
        assert second["seq"] == 2
        finished = (await host.call("room:end", {"room_id": rid}))["session_id"]
        session = await host.fetch_json(f"/api/sessions/{finished}")
        assert session["results"][host.user["id"]]["notes_played"] == 1
        await expect_error(host, "note", note(rid, now()), "room_finished")
        for client in (host, partner, third, stranger):
            await client.disconnect()

    # The server is still healthy.
    async with aiohttp.ClientSession() as http, http.get(server.url + "/api/health") as resp:
        assert resp.status == 200


async def test_connections_without_a_valid_token_are_refused(server):
    cases = [
        None,
        {},
        {"token": ""},
        {"token": "not-a-jwt"},
        {"token": 42},
        {"token": "a.b.c", "device_id": "x" * 500},
    ]
    for auth in cases:
        sio = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(server.url, auth=auth, wait_timeout=5)
        assert not sio.connected


async def test_expired_token_is_refused_with_a_clear_error(server):
    import jwt

    secret = server.secret
    token = jwt.encode(
        {"sub": "u1", "name": "late", "type": "access", "iat": 0, "exp": int(time.time()) - 10},
        secret,
        algorithm="HS256",
    )
    client = TuttiClient(server.url)
    client.token = token
    with pytest.raises(TuttiError) as info:
        await client.connect()
    assert info.value.code == "token_expired"
    assert "expired" in info.value.message
    await client.sio.disconnect()
    # With a fresh token the same person gets in.
    again = TuttiClient(server.url)
    await again.connect("back again")
    await again.disconnect()


async def test_rest_bad_bodies(server):
    async with aiohttp.ClientSession() as http:

        async def post(path, **kwargs):
            async with http.post(server.url + path, **kwargs) as resp:
                return resp.status, await resp.json()

        status, body = await post("/api/auth/guest", data=b"{not json")
        assert (status, body["error"]["code"]) == (400, "invalid_json")
        status, body = await post("/api/auth/guest", json={"display_name": "   "})
        assert (status, body["error"]["code"]) == (400, "invalid_value")
        status, body = await post("/api/auth/guest", json={"display_name": 5})
        assert (status, body["error"]["code"]) == (400, "wrong_type")
        status, body = await post("/api/auth/guest", json=[])
        assert (status, body["error"]["code"]) == (400, "wrong_type")

        status, body = await post("/api/pieces", data=chorale_midi("bach/bwv66.6"))
        assert (status, body["error"]["code"]) == (401, "missing_token")
        client = TuttiClient(server.url)
        await client.login_guest("uploader")
        auth = {"Authorization": f"Bearer {client.token}"}
        before = len((await (await http.get(server.url + "/api/pieces")).json())["pieces"])
        midi = chorale_midi("bach/bwv66.6")
        for data, code in [
            (b"hello, not music", "not_midi"),
            (b"", "not_midi"),
            (midi[: len(midi) // 2], "truncated_midi"),
        ]:
            status, body = await post("/api/pieces", data=data, headers=auth)
            assert (status, body["error"]["code"]) == (400, code), body
        status, body = await post(
            "/api/pieces", data=midi, headers=auth, params={"split_hands": "true"}
        )
        assert (status, body["error"]["code"]) == (400, "invalid_split")
        status, body = await post(
            "/api/pieces", data=midi, headers=auth, params={"split_hands": "maybe"}
        )
        assert (status, body["error"]["code"]) == (400, "invalid_value")
        status, body = await post("/api/pieces", data=b"x" * 6_000_000, headers=auth)
        assert (status, body["error"]["code"]) == (413, "too_large")
        after = len((await (await http.get(server.url + "/api/pieces")).json())["pieces"])
        assert after == before
        async with http.get(server.url + "/api/pieces/nope") as resp:
            assert resp.status == 404
        for path in ("/api/sessions/nope", "/api/sessions/nope/recording.mid"):
            async with http.get(server.url + path) as resp:
                assert resp.status == 401  # sessions are their participants' only
            async with http.get(server.url + path, headers=auth) as resp:
                assert resp.status == 404
