"""The computer partner (issue 16) through a real server with real Socket.IO clients.

``room:add_partner`` / ``room:remove_partner``, every refusal (each changes
nothing), and Bach's chorale BWV 66.6: a test player plays the Soprano with a
tempo plan the partner does not know (15 % slower for the two middle bars),
a partner plays the Bass, following in one room and at the room tempo in
another, both rooms at once: following must keep the two parts far closer
together. Generous bounds only; the figures are measured by
``python -m loadtests.bench.partner`` (loadtests/README.md).
"""

from __future__ import annotations

import asyncio

import pytest

from loadtests.bench.partner import CHORALE, figures, heard_from, partner_room
from rooms.performance import issue_plans
from rooms.piece import load_midi
from server.clients.room_client import TuttiClient
from tests.play import connected, expect_error, upload_piece

pytestmark = pytest.mark.realtime


async def duet(url: str, host: TuttiClient) -> tuple[str, str]:
    piece = await upload_piece(host, CHORALE.read_bytes(), title="partner")
    room = (
        await host.call(
            "room:create", {"piece_id": piece["id"], "mode": "duet", "count_in_beats": 0}
        )
    )["room"]
    return room["room_id"], piece["id"]


def bots(state: dict) -> list[dict]:
    return [m for m in state["members"] if m["bot"]]


async def test_add_and_remove_a_partner(server):
    host = await connected(server.url, "host")
    rid, _ = await duet(server.url, host)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    added = await host.call("room:add_partner", {"room_id": rid, "part": "Bass", "follow": True})
    assert added["partner"]["part"] == "Bass" and added["partner"]["follow"] is True
    (bot,) = bots(added["room"])
    assert bot["part"] == "Bass" and bot["role"] == "player"
    assert {p["name"]: p["user_id"] for p in added["room"]["parts"]}["Bass"] == bot["user_id"]
    state = await host.wait_for("room:state", lambda s: bots(s))
    assert bots(state) == [bot]
    assert not [m for m in state["members"] if m["user_id"] == host.user["id"]][0]["bot"]

    # The partner is the duet's second player.
    other = await connected(server.url, "other")
    await expect_error(
        other, "room:join", {"room_id": rid, "role": "player", "part": "Bass"}, "room_full"
    )
    removed = await host.call("room:remove_partner", {"room_id": rid})
    assert removed == {"room_id": rid, "removed": True}
    state = await host.wait_for("room:state", lambda s: s["members"] and not bots(s))
    assert {p["name"]: p["user_id"] for p in state["parts"]}["Bass"] is None

    # part null: the first free part (Soprano is the host's).
    added = await host.call("room:add_partner", {"room_id": rid, "part": None, "follow": False})
    assert added["partner"] == {**added["partner"], "part": "Alto", "follow": False}
    for client in (host, other):
        await client.disconnect()


async def test_every_bad_partner_request_is_refused_and_changes_nothing(server):
    host = await connected(server.url, "host")
    rid, _ = await duet(server.url, host)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    other = await connected(server.url, "other")
    await other.call("room:join", {"room_id": rid, "role": "spectator"})

    async def members() -> list:
        fresh = await connected(server.url, "look")
        state = (await fresh.call("room:join", {"room_id": rid, "role": "spectator"}))["room"]
        await fresh.disconnect()
        return [(m["display_name"], m["part"], m["bot"]) for m in state["members"]]

    before = await members()
    add = {"room_id": rid, "part": "Bass", "follow": True}
    await expect_error(host, "room:remove_partner", {"room_id": rid}, "no_partner")
    await expect_error(host, "room:add_partner", {**add, "room_id": "nope"}, "unknown_room")
    await expect_error(host, "room:remove_partner", {"room_id": "nope"}, "unknown_room")
    await expect_error(other, "room:add_partner", add, "not_host")
    await expect_error(host, "room:add_partner", {**add, "part": "Soprano"}, "part_taken")
    message = await expect_error(host, "room:add_partner", {**add, "part": "Kazoo"}, "unknown_part")
    assert "Bass" in message
    await expect_error(host, "room:add_partner", {**add, "follow": "yes"}, "wrong_type")
    await expect_error(host, "room:add_partner", {**add, "tempo": 3}, "unknown_field")
    await expect_error(host, "room:add_partner", {"part": "Bass"}, "missing_field")
    await expect_error(host, "room:add_partner", None, "wrong_type")
    assert await members() == before

    await host.call("room:add_partner", add)
    with_partner = await members()
    await expect_error(host, "room:add_partner", {**add, "part": "Alto"}, "partner_exists")
    await expect_error(other, "room:remove_partner", {"room_id": rid}, "not_host")
    assert await members() == with_partner

    free = (await host.call("room:create", {"piece_id": None, "mode": "free"}))["room"]
    await expect_error(
        host,
        "room:add_partner",
        {"room_id": free["room_id"], "part": None, "follow": True},
        "partner_in_free_jam",
    )
    await host.call("room:start", {"room_id": rid})
    await expect_error(host, "room:add_partner", {**add, "part": "Alto"}, "already_started")
    assert await members() == with_partner
    await host.call("room:end", {"room_id": rid})
    for client in (host, other):
        await client.disconnect()


async def test_removing_a_playing_partner_releases_its_notes(server):
    host = await connected(server.url, "host")
    rid, _ = await duet(server.url, host)
    await host.call("room:join", {"room_id": rid, "role": "player", "part": "Soprano"})
    await host.call("room:add_partner", {"room_id": rid, "part": "Bass", "follow": False})
    await host.call("room:start", {"room_id": rid})
    partner_id = f"partner-{rid}"
    await host.wait_for("note", lambda e: e["user_id"] == partner_id, timeout=10)
    await asyncio.sleep(0.7)
    await host.call("room:remove_partner", {"room_id": rid})
    count = len(heard_from(host, partner_id))
    await asyncio.sleep(1.5)
    heard = heard_from(host, partner_id)
    assert len(heard) == count  # it stopped
    sounding: dict[int, int] = {}
    for e in heard:
        sounding[e["pitch"]] = sounding.get(e["pitch"], 0) + (1 if e["type"] == "on" else -1)
    assert not any(sounding.values())  # every note it played was released
    state = await host.wait_for("room:state", lambda s: s["start_at"] and not bots(s))
    assert [m["user_id"] for m in state["members"]] == [host.user["id"]]
    finished = await host.call("room:end", {"room_id": rid})
    done = await host.wait_for("room:finished")
    assert done["session_id"] == finished["session_id"]
    assert done["partner"]["complete"] is False
    await host.disconnect()


async def test_partner_follows_a_human_on_a_bach_chorale(server):
    midi = CHORALE.read_bytes()
    piece = load_midi(midi, title="BWV 66.6")
    host = await connected(server.url, "uploader")
    piece_id = (await upload_piece(host, midi, title="BWV 66.6 partner"))["id"]
    plan = issue_plans(max(n.offset_beat for n in piece.part("Soprano").notes))["slower_bars"]
    (followed, human), (fixed, _) = await asyncio.gather(
        *(
            partner_room(server.url, piece_id, piece, follow=follow, ratio_at=plan, tempo_bpm=150.0)
            for follow in (True, False)
        )
    )
    on = figures(followed, heard_from(human, followed["partner"]["user_id"]))
    off = figures(fixed, [])
    # Following keeps the parts together where a fixed tempo drifts away: by far.
    assert on["pairs"] >= 25 and off["pairs"] >= 25
    assert on["mean"] * 5 < off["mean"] and on["p95"] * 5 < off["p95"]
    assert on["out_of_order"] == 0
    assert followed["asynchrony_ms"] == pytest.approx(on["mean"], abs=0.01)

    # The partner is reported apart and never saved as a session player.
    me = human.user["id"]
    assert list(followed["results"]) == [me]
    partner = followed["partner"]
    assert partner["part"] == "Bass" and partner["follow"] is True and partner["complete"]
    assert partner["result"]["notes_expected"] == len(piece.part("Bass").notes)
    assert partner["result"]["asynchrony_ms"] == followed["results"][me]["asynchrony_ms"]
    session = await human.fetch_json(f"/api/sessions/{followed['session_id']}")
    assert list(session["results"]) == [me]
    # Its notes reached the human as ordinary relayed notes, numbered in the room's sequence.
    heard = heard_from(human, partner["user_id"])
    assert len([e for e in heard if e["type"] == "on"]) == partner["result"]["notes_played"]
    assert {m["part"] for m in human.received["notes"] + human.received["note"]} == {"Bass"}
    seqs = [e["seq"] for e in heard]
    assert seqs == sorted(set(seqs))
    await human.disconnect()
    await host.disconnect()
